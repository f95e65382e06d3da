// Status JSON, status text, the instance list and the metrics, rendered from one
// StatusSnapshot and compared byte for byte with the golden files in data/. After an
// intended change of an output, USHERD_UPDATE_GOLDEN=1 rewrites them (review the diff: the
// JSON fields and metric names are interfaces other tools read).
#include "supervisor/status_snapshot.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/json/serialize.hpp>

#include "tests/catch.h"

using namespace usherd;
using namespace usherd::supervisor;

namespace {

StatusSnapshot sample() {
  StatusSnapshot s;
  s.startups.current = 3;
  s.startups.peak = 17;
  s.limits = {10, 30, 100};
  s.penalised_sources = 2;
  s.uptime_s = 3600.5;
  s.pid = 4242;
  s.reloads = 1;
  s.notify_rejected = 5;
  s.startups_unknown = 1;
  s.startups_reclaimed = 4;
  s.startup_timeouts = 4;
  s.spawn_failures = 6;
  s.launches_stalled = 0;
  s.control_answered = 12;
  s.control_refused = 1;
  s.metrics_listen = "127.0.0.1:9100";
  s.spawn_seconds.observe(0.0004);
  s.spawn_seconds.observe(0.003);
  s.room.enabled = true;
  s.room.parked = 7;
  s.room.peak = 40;
  s.room.blocks = 2;
  s.room.started = 120;
  s.room.waited_max = std::chrono::milliseconds(2500);
  s.room.max_wait = std::chrono::seconds(8);
  s.room.configured = {1000, 30, 1000};
  s.parked_blocks.push_back({*policy::Cidr::parse("127.0.4.0/24"), 6});
  s.parked_blocks.push_back({*policy::Cidr::parse("2001:db8::/64"), 1});
  s.room_wait_seconds.observe(0.2);

  SocketSnapshot ssh;
  ssh.name = "ssh.socket";
  ssh.service = "ssh@.service";
  ssh.listen = {"0.0.0.0:22", "[::]:22"};
  ssh.accept = true;
  ssh.held = true;
  ssh.stats.startups = 3;
  ssh.stats.instances = 4;
  ssh.stats.parked = 7;
  ssh.stats.parked_total = 130;
  ssh.stats.abandoned = 3;
  ssh.stats.accepted = 120;
  ssh.stats.admitted = 100;
  ssh.stats.dropped[static_cast<std::size_t>(policy::DropReason::startups_early_drop)] = 15;
  ssh.stats.dropped[static_cast<std::size_t>(policy::DropReason::penalty)] = 5;
  ssh.startup_seconds.observe(0.8);
  ssh.startup_seconds.observe(2.5);
  s.sockets.push_back(ssh);

  SocketSnapshot web;
  web.name = "we\"b\n.socket";  // a label that must be escaped
  web.service = "web.service";
  web.listen = {"/run/web.sock"};
  web.service_state = "running";
  web.stats.instances = 1;
  s.sockets.push_back(web);

  s.instances.push_back({"ssh@1-127.0.0.1:22-127.0.0.2:40000.service", "ssh.socket", "ssh@.service",
                         5001, "127.0.0.2:40000", "starting", std::nullopt, 0.25, false});
  s.instances.push_back({"ssh@2-127.0.0.1:22-127.0.0.3:40001.service", "ssh.socket", "ssh@.service",
                         5002, "127.0.0.3:40001", "running", "notify", 61.0, true});
  s.instances.push_back(
      {"web.service", "we\"b\n.socket", "web.service", 5003, "", "running", "exec", 12.0, false});
  s.tracked = 4;
  return s;
}

void golden(const std::string& name, const std::string& actual) {
  std::string path = std::string(USHERD_TEST_DATA_DIR) + "/" + name;
  if (const char* update = std::getenv("USHERD_UPDATE_GOLDEN"); update && *update == '1') {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream expected;
  expected << in.rdbuf();
  INFO(name);
  CHECK(actual == expected.str());
}

}  // namespace

TEST_CASE("status JSON is rendered as the golden file", "[supervisor][status]") {
  golden("status.json", boost::json::serialize(render_status_json(sample())) + "\n");
}

TEST_CASE("the instance list is rendered as the golden file", "[supervisor][status]") {
  golden("list.json", boost::json::serialize(render_list_json(sample())) + "\n");
}

TEST_CASE("status text is rendered as the golden file", "[supervisor][status]") {
  golden("status.txt", render_status_text(sample()));
}

TEST_CASE("metrics are rendered as the golden file", "[supervisor][status]") {
  golden("metrics.txt", render_metrics(sample()));
}

TEST_CASE("an empty snapshot renders without sockets or instances", "[supervisor][status]") {
  StatusSnapshot empty;
  auto json = render_status_json(empty);
  CHECK(json.at("sockets").as_array().empty());
  CHECK(json.at("instances").as_array().empty());
  CHECK_FALSE(json.contains("metrics_listen"));
  CHECK(render_status_text(empty) ==
        "usherd: startups 0 of 10:30:100 (peak 0), 0 instances, 0 penalised sources\n");
}
