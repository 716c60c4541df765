# Sidekiq 6.4 (Debian's ruby-sidekiq) throughput against the server at REDIS_URL: enqueue N no-op
# jobs with push_bulk (batches of 1,000), then drain them with a real `sidekiq` process.
# Prints one JSON line. Usage: REDIS_URL=redis://127.0.0.1:PORT/0 ruby sidekiq_bench.rb N [CONCURRENCY]
# The drain rate runs from the first job leaving the queue to the queue being empty (the
# process's boot is reported apart); Sidekiq's processed counter (flushed when the process
# exits) must then equal N and the queue be empty.
require_relative "sidekiq_jobs"
require "sidekiq/api"
require "json"
require "tmpdir"

n = Integer(ARGV.fetch(0))
concurrency = Integer(ARGV.fetch(1, "10"))
def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
def queued = Sidekiq.redis { |c| c.llen("queue:default") }

Sidekiq.redis(&:flushdb)
t0 = now
(0...n).step(1000) do |i|
  Sidekiq::Client.push_bulk("class" => NoopJob, "args" => (i...[i + 1000, n].min).map { |j| [j] })
end
enqueue_s = now - t0
raise "queued #{queued}, expected #{n}" unless queued == n

log = File.join(Dir.tmpdir, "berth-bench-sidekiq-#{Process.pid}.log")
pid = Process.spawn({ "REDIS_URL" => ENV.fetch("REDIS_URL") }, "sidekiq", "-r", File.join(__dir__, "sidekiq_jobs.rb"),
  "-c", concurrency.to_s, "-q", "default", "-t", "10", out: log, err: log)
t_spawn = now
deadline = t_spawn + 1800
sleep 0.002 while queued == n && now < deadline
t_first = now
sleep 0.005 while queued > 0 && now < deadline
t_empty = now
# The last jobs fetched may still be running: give them a moment before the stop (a job fetched
# but not started when the stop comes is pushed back, and would then be missing from the count).
sleep 1
Process.kill("TERM", pid)
Process.wait(pid)
processed = Sidekiq::Stats.new.processed
failed = Sidekiq::Stats.new.failed
puts JSON.dump(jobs: n, concurrency: concurrency, enqueue_s: enqueue_s.round(3), enqueue_per_s: (n / enqueue_s).round,
  boot_s: (t_first - t_spawn).round(3), drain_s: (t_empty - t_first).round(3),
  drain_per_s: (n / (t_empty - t_first)).round, processed: processed, failed: failed,
  left: queued, ok: processed == n && failed.zero? && queued.zero?)
File.delete(log) if processed == n
