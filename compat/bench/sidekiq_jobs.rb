# The no-op job of the Sidekiq benchmark (compat/bench/sidekiq_bench.rb); `sidekiq -r` loads it.
require "sidekiq"

Sidekiq.configure_server { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.logger.level = Logger::WARN
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

class NoopJob
  include Sidekiq::Job
  def perform(_index); end
end
