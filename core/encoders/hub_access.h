// The Hub's refusals turned into advice: 401 (no or a bad token: gated or private), 403 (the token's account has
// not accepted a gated model's licence), 404 (no such repository, revision or file).
#pragma once
#include <string>

namespace repa::encoders {

struct HubAccess {
  std::string endpoint, repo, revision;
  bool has_token = false;
  std::string token_source;  // "$HF_TOKEN" or the token file, for the message
};

// Throws InputError for 401 / 403 / 404 (naming the repo, the revision and what to do), Error for any other status.
// `error_code` is the Hub's X-Error-Code header (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound).
[[noreturn]] void throw_hub_access_error(const HubAccess& access, long status, const std::string& error_code,
                                         const std::string& url);

}  // namespace repa::encoders
