# Used by test_migrate.py. `ruby migrate_sidekiq.rb produce`: enqueue real Sidekiq jobs on
# redis-server (REDIS_URL): 10 now, 2 due in 3 s, 1 in an hour. Loaded by `sidekiq -r` on Berth
# after the copy, it runs them; each records itself in the `migrated:done` set.
require "sidekiq"

Sidekiq.configure_server do |config|
  config.options[:average_scheduled_poll_interval] = 1
end

class MigratedJob
  include Sidekiq::Worker

  def perform(n)
    Sidekiq.redis { |r| r.sadd("migrated:done", n.to_s) }
  end
end

if $PROGRAM_NAME == __FILE__ && ARGV[0] == "produce"
  10.times { |i| MigratedJob.perform_async(i) }
  MigratedJob.perform_in(3, 100)
  MigratedJob.perform_in(3, 101)
  MigratedJob.perform_in(3600, 102)
  puts "produced"
end
