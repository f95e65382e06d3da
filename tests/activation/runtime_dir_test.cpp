// Runtime directories: creation with mode and owner, re-creation, and removal that never
// follows a symlink out of the tree.
#include "activation/runtime_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/catch.h"

using namespace usherd;
using namespace usherd::activation;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/usherd-runtime-XXXXXX";
    REQUIRE(mkdtemp(pattern));
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("a runtime directory is created with its mode and owner, and again after removal",
          "[activation][runtimedir]") {
  TempDir base;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  if (geteuid() == 0) {
    uid = 65534;
    gid = 65534;
  }
  auto made = create_runtime_directory(base.path.string(), "sshd", 0750, uid, gid);
  REQUIRE(made);
  CHECK(*made == (base.path / "sshd").string());
  CHECK(mode_of(*made) == 0750);
  if (uid) {
    struct stat st {};
    REQUIRE(stat(made->c_str(), &st) == 0);
    CHECK(st.st_uid == *uid);
    CHECK(st.st_gid == *gid);
  }
  // Existing: kept, mode applied again.
  REQUIRE(chmod(made->c_str(), 0700) == 0);
  std::ofstream(*made + "/pid") << "1";
  REQUIRE(create_runtime_directory(base.path.string(), "sshd", 0755));
  CHECK(mode_of(*made) == 0755);
  CHECK(fs::exists(*made + "/pid"));

  REQUIRE(remove_tree(*made));
  CHECK_FALSE(fs::exists(*made));
  REQUIRE(create_runtime_directory(base.path.string(), "sshd", 0755));
  CHECK(fs::is_directory(*made));
}

TEST_CASE("a nested runtime directory name creates its intermediate directories",
          "[activation][runtimedir]") {
  TempDir base;
  auto made = create_runtime_directory(base.path.string(), "a/b/c", 0700);
  REQUIRE(made);
  CHECK(mode_of(base.path / "a") == 0755);
  CHECK(mode_of(base.path / "a" / "b" / "c") == 0700);
}

TEST_CASE("runtime directory names that escape the base are refused", "[activation][runtimedir]") {
  TempDir base;
  auto name = GENERATE(as<std::string>{}, "", "/etc", "../x", "a/../../x");
  auto made = create_runtime_directory(base.path.string(), name, 0755);
  REQUIRE_FALSE(made);
  CHECK(made.error().code == EINVAL);
}

TEST_CASE("a file or symlink in the way of a runtime directory is an error",
          "[activation][runtimedir]") {
  TempDir base;
  TempDir elsewhere;
  fs::create_directory_symlink(elsewhere.path, base.path / "link");
  std::ofstream(base.path / "file") << "x";
  CHECK_FALSE(create_runtime_directory(base.path.string(), "link", 0700));
  CHECK(mode_of(elsewhere.path) == 0700);  // mkdtemp's mode, untouched
  CHECK_FALSE(create_runtime_directory(base.path.string(), "file", 0700));
}

TEST_CASE("removing a tree deletes symlinks but never what they point to",
          "[activation][runtimedir]") {
  TempDir base;
  TempDir outside;
  std::ofstream(outside.path / "precious") << "keep";
  fs::create_directories(base.path / "run" / "sub" / "deeper");
  std::ofstream(base.path / "run" / "sub" / "deeper" / "f") << "x";
  fs::create_directory_symlink(outside.path, base.path / "run" / "sub" / "escape");
  fs::create_symlink(outside.path / "precious", base.path / "run" / "file-link");

  REQUIRE(remove_tree((base.path / "run").string()));
  CHECK_FALSE(fs::exists(base.path / "run"));
  CHECK(fs::exists(outside.path / "precious"));

  CHECK(remove_tree((base.path / "does-not-exist").string()));
  // A symlink given as the tree itself is removed as a link.
  fs::create_directory_symlink(outside.path, base.path / "top-link");
  REQUIRE(remove_tree((base.path / "top-link").string()));
  CHECK_FALSE(fs::exists(fs::symlink_status(base.path / "top-link")));
  CHECK(fs::exists(outside.path / "precious"));
}

TEST_CASE("usherd's own runtime directory is created private and refused when it is not",
          "[activation][runtimedir]") {
  TempDir tmp;
  std::string path = (tmp.path / "run").string();
  auto made = open_private_directory(path);
  REQUIRE(made);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(open_private_directory(path));  // existing and private: fine

  REQUIRE(::chmod(path.c_str(), 0775) == 0);
  auto group_writable = open_private_directory(path);
  REQUIRE_FALSE(group_writable);
  CHECK(group_writable.error().code == EPERM);
  CHECK(group_writable.error().message.find("mode 0775") != std::string::npos);
  REQUIRE(::chmod(path.c_str(), 0755) == 0);

  if (::geteuid() == 0) {
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    auto foreign = open_private_directory(path);
    REQUIRE_FALSE(foreign);
    CHECK(foreign.error().message.find("owned by uid 65534") != std::string::npos);
  }

  std::string link = (tmp.path / "link").string();
  REQUIRE(::symlink(path.c_str(), link.c_str()) == 0);
  auto via_link = open_private_directory(link);
  REQUIRE_FALSE(via_link);
  CHECK(via_link.error().code == ELOOP);
}
