# Sidekiq 6.4.1 (Debian's ruby-sidekiq) and sidekiq-cron against a real berth: client pushes,
# a real `sidekiq` process, retries, the dead set, the scheduled poller, the API, the Web UI,
# quiet/stop, and restarts (graceful and kill -9) in the middle.
require "minitest/autorun"
require "socket"
require "tmpdir"
require "fileutils"
require "json"

# One berth process on a free port with its own data directory (COMPAT_SERVER=redis: redis-server).
class BerthProcess
  attr_reader :port

  def initialize
    @port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    @dir = Dir.mktmpdir("berth-sidekiq-")
    start
  end

  def url = "redis://127.0.0.1:#{@port}/0"

  def start
    bin = ENV["BERTH_BIN"] || File.expand_path("../../target/debug/berth", __dir__)
    cmd = if ENV["COMPAT_SERVER"] == "redis"
      ["redis-server", "--port", @port.to_s, "--dir", @dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always"]
    else
      [bin, "--port", @port.to_s, "--dir", File.join(@dir, "data")]
    end
    @pid = Process.spawn(*cmd, out: File.join(@dir, "server.log"), err: [:child, :out])
    # Ready once PING answers PONG: while the dataset loads the server answers -LOADING.
    600.times do
      s = TCPSocket.new("127.0.0.1", @port)
      s.write("PING\r\n")
      ok = s.gets.to_s.start_with?("+PONG")
      s.close
      return if ok
      sleep 0.05
    rescue Errno::ECONNREFUSED, Errno::ECONNRESET
      sleep 0.05
    end
    raise "server did not start"
  end

  def stop(signal = "TERM")
    Process.kill(signal, @pid)
    Process.wait(@pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def restart(signal = "TERM")
    stop(signal)
    start
  end

  def close
    stop("KILL")
    FileUtils.rm_rf(@dir)
  end
end

SERVER = BerthProcess.new
ENV["REDIS_URL"] = SERVER.url
Minitest.after_run { SERVER.close }

require_relative "jobs"
require "sidekiq/api"

module SidekiqHelpers
  def redis(&block) = Sidekiq.redis(&block)

  def start_sidekiq(concurrency: 5)
    log = File.open(File.join(Dir.tmpdir, "sidekiq-compat-#{Process.pid}.log"), "a")
    @sidekiq = Process.spawn({ "REDIS_URL" => SERVER.url }, "sidekiq", "-r", File.join(__dir__, "jobs.rb"),
      "-c", concurrency.to_s, "-q", "critical,2", "-q", "default", "-q", "low", "-t", "2", out: log, err: log)
  end

  def stop_sidekiq(signal = "TERM")
    return unless @sidekiq
    Process.kill(signal, @sidekiq)
    Process.wait(@sidekiq)
    @sidekiq = nil
  end

  def wait_for(what, timeout: 20)
    deadline = Time.now + timeout
    until (v = yield)
      flunk("timed out waiting for #{what}") if Time.now > deadline
      sleep 0.1
    end
    v
  end

  def setup
    redis(&:flushall)
  end

  def teardown
    stop_sidekiq("KILL") if @sidekiq
  end
end

class ClientAndServerTest < Minitest::Test
  include SidekiqHelpers

  def test_pushes_are_processed_by_a_real_sidekiq
    jids = (1..10).map { |i| AddJob.perform_async(i, 100) }
    jids += Sidekiq::Client.push_bulk("class" => AddJob, "args" => [[1, 1], [2, 2], [3, 3]])
    jids << AddJob.set(queue: "critical").perform_async(7, 7)
    assert_equal 13, Sidekiq::Queue.new("default").size
    assert_equal 1, Sidekiq::Queue.new("critical").size
    assert_equal %w[critical default], Sidekiq::Queue.all.map(&:name).sort
    start_sidekiq
    wait_for("14 results") { redis { |c| c.llen("results") } == 14 }
    results = redis { |c| c.lrange("results", 0, -1) }.map { |r| JSON.parse(r) }
    assert_equal jids.sort, results.map(&:first).sort
    assert_equal (1..10).map { |i| i + 100 }.sum + 2 + 4 + 6 + 14, results.sum { |r| r[1] }
    wait_for("processed stat") { Sidekiq::Stats.new.processed >= 14 }
    assert_equal 0, Sidekiq::Stats.new.enqueued
  end

  def test_scheduled_jobs_are_enqueued_by_the_poller
    AddJob.perform_in(1, 1, 2)
    AddJob.perform_at(Time.now + 2, 3, 4)
    Sidekiq::Client.push_bulk("class" => AddJob, "args" => [[5, 6]], "at" => [Time.now.to_f + 1])
    assert_equal 3, Sidekiq::ScheduledSet.new.size
    start_sidekiq
    wait_for("scheduled jobs to run") { redis { |c| c.llen("results") } == 3 }
    assert_equal [3, 7, 11], redis { |c| c.lrange("results", 0, -1) }.map { |r| JSON.parse(r)[1] }.sort
    assert_equal 0, Sidekiq::ScheduledSet.new.size
  end

  def test_failing_job_retries_then_dies
    jid = FailJob.perform_async("x")
    start_sidekiq
    wait_for("the job in the dead set") { Sidekiq::DeadSet.new.size == 1 }
    dead = Sidekiq::DeadSet.new.first
    assert_equal jid, dead.jid
    assert_equal "boom x", dead["error_message"]
    assert_equal 1, dead["retry_count"]
    assert_equal "2", redis { |c| c.get("attempts:x") }
    assert_equal 0, Sidekiq::RetrySet.new.size
    wait_for("failure stats (flushed by the heartbeat)") { Sidekiq::Stats.new.failed >= 2 }
  end

  def test_heartbeat_process_set_and_workers
    SlowJob.perform_async(8, "busy")
    start_sidekiq
    # Workers and process data are written by the heartbeat, every 5 seconds.
    wait_for("a worker busy") { Sidekiq::Workers.new.size == 1 }
    ps = Sidekiq::ProcessSet.new
    assert_equal 1, ps.size
    process = ps.first
    assert_equal 5, process["concurrency"]
    assert_includes process["queues"], "low"
    ttl = redis { |c| c.ttl(process.identity) }
    assert_operator ttl, :>, 0
    assert_operator ttl, :<=, 60
    _, _, work = Sidekiq::Workers.new.first
    assert_equal "SlowJob", (work["payload"].is_a?(String) ? JSON.parse(work["payload"]) : work["payload"])["class"]
    process.quiet!
    wait_for("quiet flag") { Sidekiq::ProcessSet.new.first&.stopping? }
    wait_for("the slow job to finish") { redis { |c| c.llen("finished") } == 1 }
  end

  # One worker thread: with idle fetchers, a pushed-back job can be fetched again by a quieting
  # thread and lost when it is killed (BasicFetch's at-most-once edge, the same on Redis).
  def test_graceful_stop_pushes_in_flight_jobs_back
    SlowJob.perform_async(30, "long")
    start_sidekiq(concurrency: 1)
    wait_for("the job to start") { redis { |c| c.llen("started") } == 1 }
    stop_sidekiq("TERM")
    assert_equal 1, Sidekiq::Queue.new("low").size
    assert_equal "SlowJob", Sidekiq::Queue.new("low").first.klass
  end
end

class ApiTest < Minitest::Test
  include SidekiqHelpers

  def test_queue_api
    jids = 3.times.map { |i| QueueJob.set(queue: "parked").perform_async("p#{i}") }
    q = Sidekiq::Queue.new("parked")
    assert_equal 3, q.size
    assert_operator q.latency, :>=, 0
    assert_equal jids.sort, q.map(&:jid).sort
    assert_equal jids[1], q.find_job(jids[1]).jid
    q.find_job(jids[1]).delete
    assert_equal 2, q.size
    q.clear
    assert_equal 0, q.size
    assert_empty Sidekiq::Queue.all.map(&:name)
  end

  def test_sorted_set_apis
    3.times { |i| FailLaterJob.set(retry: 3).perform_in(3600 + i, "later#{i}") }
    ss = Sidekiq::ScheduledSet.new
    assert_equal 3, ss.size
    assert_equal 3, ss.scan("later").to_a.size
    entry = ss.first
    assert_equal entry.jid, ss.find_job(entry.jid).jid
    assert_equal [entry.jid], ss.fetch(entry.score, entry.jid).map(&:jid)
    entry.reschedule(Time.now + 5000)
    assert_in_delta Time.now.to_f + 5000, ss.find_job(entry.jid).score, 5
    ss.find_job(entry.jid).add_to_queue
    assert_equal 1, Sidekiq::Queue.new("default").size
    ss.first.kill
    assert_equal 1, Sidekiq::DeadSet.new.size
    ss.first.delete
    assert_equal 0, ss.size
    ds = Sidekiq::DeadSet.new
    ds.kill(Sidekiq.dump_json("class" => "QueueJob", "args" => ["m"], "jid" => "deadbeefdeadbeefdeadbeef", "queue" => "default"))
    assert_equal 2, ds.size
    assert_equal "deadbeefdeadbeefdeadbeef", ds.find_job("deadbeefdeadbeefdeadbeef").jid
    ds.retry_all
    assert_equal 0, ds.size
    assert_equal 3, Sidekiq::Queue.new("default").size
  end

  def test_stats_and_history
    redis { |c| c.set("stat:processed", 42) }
    today = Time.now.utc.strftime("%Y-%m-%d")
    redis { |c| c.set("stat:processed:#{today}", 5) }
    stats = Sidekiq::Stats.new
    assert_equal 42, stats.processed
    assert_equal 5, Sidekiq::Stats::History.new(1).processed[today]
    stats.reset("processed")
    assert_equal 0, Sidekiq::Stats.new.processed
  end
end

class WebUiTest < Minitest::Test
  include SidekiqHelpers

  def setup
    super
    require "sidekiq/web"
    require "rack/mock"
    require "rack/session/cookie"
    @app = Rack::Builder.new do
      use Rack::Session::Cookie, secret: "x" * 64, same_site: true, max_age: 86400
      run Sidekiq::Web
    end.to_app
    @req = Rack::MockRequest.new(@app)
    @cookie = nil
  end

  def get(path)
    r = @req.get(path, "HTTP_COOKIE" => @cookie.to_s)
    @cookie = r["Set-Cookie"].split(";").first if r["Set-Cookie"]
    r
  end

  def post(path, form)
    token = get("/busy").body[/name=["']authenticity_token["'] value=["']([^"']+)/, 1]
    r = @req.post(path, "HTTP_COOKIE" => @cookie.to_s, "CONTENT_TYPE" => "application/x-www-form-urlencoded",
      input: URI.encode_www_form(form.merge("authenticity_token" => token)))
    @cookie = r["Set-Cookie"].split(";").first if r["Set-Cookie"]
    r
  end

  def test_every_page_renders_and_actions_work
    3.times { |i| QueueJob.set(queue: "parked").perform_async("p#{i}") }
    FailLaterJob.perform_in(3600, "sched")
    Sidekiq::RetrySet.new # the retry set is filled directly, as a failed job would be
    redis { |c| c.zadd("retry", Time.now.to_f + 600, Sidekiq.dump_json("class" => "FailLaterJob", "args" => ["r"], "jid" => "a" * 24, "queue" => "default", "retry_count" => 0, "error_message" => "later r", "error_class" => "RuntimeError", "failed_at" => Time.now.to_f)) }
    Sidekiq::DeadSet.new.kill(Sidekiq.dump_json("class" => "QueueJob", "args" => ["d"], "jid" => "b" * 24, "queue" => "default", "error_message" => "boom d", "error_class" => "ArgumentError", "failed_at" => Time.now.to_f))
    %w[/ /?days=7 /busy /queues /queues/parked /queues/parked?direction=asc /retries /scheduled /morgue
       /retries?substr=later /morgue?substr=boom /scheduled?substr=sched /stats /stats/queues].each do |path|
      r = get(path)
      assert_equal 200, r.status, "GET #{path} -> #{r.status}"
    end
    assert_equal 302, get("/dashboard/stats").status # 6.4 redirects it to /stats
    assert_includes get("/queues").body, "parked"
    r1 = Sidekiq::RetrySet.new.first
    assert_equal 200, get("/retries/#{r1.score}-#{r1.jid}").status
    s1 = Sidekiq::ScheduledSet.new.first
    assert_equal 200, get("/scheduled/#{s1.score}-#{s1.jid}").status
    d1 = Sidekiq::DeadSet.new.first
    assert_equal 200, get("/morgue/#{d1.score}-#{d1.jid}").status
    assert_equal 302, post("/retries/#{r1.score}-#{r1.jid}", "retry" => "Retry Now").status
    assert_equal 0, Sidekiq::RetrySet.new.size
    assert_equal 302, post("/scheduled", "key[]" => "#{s1.score}-#{s1.jid}", "add_to_queue" => "Add to queue").status
    assert_equal 0, Sidekiq::ScheduledSet.new.size
    assert_equal 302, post("/morgue/all/retry", {}).status
    assert_equal 0, Sidekiq::DeadSet.new.size
    assert_equal 302, post("/queues/parked", "clear" => "1").status
    assert_equal 0, Sidekiq::Queue.new("parked").size
  end
end

class RestartTest < Minitest::Test
  include SidekiqHelpers

  def fill
    5.times { |i| AddJob.perform_async(i, i) }
    2.times { |i| AddJob.perform_in(3600, i, 0) }
    redis { |c| c.zadd("retry", Time.now.to_f + 600, Sidekiq.dump_json("class" => "AddJob", "args" => [1, 1], "jid" => "c" * 24, "queue" => "default", "retry_count" => 0)) }
    Sidekiq::DeadSet.new.kill(Sidekiq.dump_json("class" => "AddJob", "args" => [2, 2], "jid" => "d" * 24, "queue" => "default"))
    redis { |c| c.set("stat:processed", 10) }
  end

  # Every key with its type, its whole value and whether it has a TTL.
  def dump
    redis do |c|
      c.keys("*").sort.map do |k|
        t = c.type(k)
        v = case t
            when "string" then c.get(k)
            when "list" then c.lrange(k, 0, -1)
            when "hash" then c.hgetall(k).sort
            when "set" then c.smembers(k).sort
            when "zset" then c.zrange(k, 0, -1, with_scores: true)
            end
        [k, t, v, c.ttl(k) > 0]
      end
    end
  end

  def check_and_process
    assert_equal 5, Sidekiq::Queue.new("default").size
    assert_equal 2, Sidekiq::ScheduledSet.new.size
    assert_equal 1, Sidekiq::RetrySet.new.size
    assert_equal 1, Sidekiq::DeadSet.new.size
    assert_equal 10, Sidekiq::Stats.new.processed
    Sidekiq::ScheduledSet.new.each(&:add_to_queue)
    Sidekiq::RetrySet.new.retry_all
    Sidekiq::DeadSet.new.retry_all
    start_sidekiq
    wait_for("all 9 jobs") { redis { |c| c.llen("results") } == 9 }
    assert_equal [0, 1, 2, 4, 6, 8, 2, 4, 0].sum, redis { |c| c.lrange("results", 0, -1) }.sum { |r| JSON.parse(r)[1] }
  end

  def test_graceful_restart_keeps_every_job
    fill
    before = dump
    SERVER.restart("TERM")
    assert_equal before, dump
    check_and_process
  end

  def test_kill_9_keeps_every_acknowledged_job
    fill
    redis { |c| c.set("stat:processed:2026-01-01", 3, ex: 3600) }
    before = dump
    assert_operator before.size, :>=, 7
    assert(before.any? { |_, _, _, ttl| ttl }, "a key with a TTL is in the dump")
    SERVER.restart("KILL")
    assert_equal before, dump, "the keyspace after kill -9 differs, key by key"
    check_and_process
  end
end

class CronTest < Minitest::Test
  include SidekiqHelpers

  def test_cron_job_fires
    job = Sidekiq::Cron::Job.new(name: "every-second", cron: "* * * * * *", class: "QueueJob", args: ["cron"])
    assert job.save, job.errors.inspect
    assert_equal 1, Sidekiq::Cron::Job.count
    start_sidekiq
    wait_for("the cron job to run twice", timeout: 30) { redis { |c| c.llen("ran:cron") } >= 2 }
    Sidekiq::Cron::Job.destroy_all!
    assert_equal 0, Sidekiq::Cron::Job.count
  end
end
