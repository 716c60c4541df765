# Jobs for the Sidekiq suite. Each records what it did in Redis, so the tests assert on results.
require "sidekiq"
require "sidekiq-cron"
require "json"

Sidekiq.configure_server do |config|
  config.redis = { url: ENV.fetch("REDIS_URL") }
  config.options[:poll_interval_average] = 1
  config.options[:cron_poll_interval] = 1
end
Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.logger.level = Logger::WARN

class AddJob
  include Sidekiq::Job
  def perform(a, b)
    Sidekiq.redis { |c| c.rpush("results", JSON.dump([jid, a + b, Thread.current.name.to_s])) }
  end
end

class QueueJob
  include Sidekiq::Job
  def perform(tag)
    Sidekiq.redis { |c| c.rpush("ran:#{tag}", jid) }
  end
end

class SlowJob
  include Sidekiq::Job
  sidekiq_options queue: "low"
  def perform(secs, tag)
    Sidekiq.redis { |c| c.rpush("started", tag) }
    sleep(secs)
    Sidekiq.redis { |c| c.rpush("finished", tag) }
  end
end

class FailJob
  include Sidekiq::Job
  sidekiq_options retry: 1, queue: "critical"
  sidekiq_retry_in { |_count, _exception| 1 }
  def perform(x)
    Sidekiq.redis { |c| c.incr("attempts:#{x}") }
    raise ArgumentError, "boom #{x}"
  end
end

class FailLaterJob
  include Sidekiq::Job
  sidekiq_options retry: 3
  sidekiq_retry_in { |_count, _exception| 600 }
  def perform(x) = raise("later #{x}")
end
