# A Sidekiq worker for compose.yaml: `sidekiq -r ./worker.rb`. Sidekiq reads the server's
# address from REDIS_URL (redis://:password@berth:6379/0). On startup it enqueues one
# HelloJob, which counts itself in the `example:hello` key.
require "sidekiq"

class HelloJob
  include Sidekiq::Worker

  def perform(name)
    Sidekiq.redis { |r| r.incr("example:hello") }
    Sidekiq.logger.info("hello, #{name}")
  end
end

Sidekiq.configure_server do |config|
  config.on(:startup) { HelloJob.perform_async("sidekiq") }
end
