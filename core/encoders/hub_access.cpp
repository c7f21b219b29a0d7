#include "core/encoders/hub_access.h"

#include "core/base/error.h"

namespace repa::encoders {

void throw_hub_access_error(const HubAccess& a, long status, const std::string& error_code, const std::string& url) {
  const std::string page = a.endpoint + "/" + a.repo;
  const std::string token = a.token_source.empty() ? "the token" : "the token from " + a.token_source;
  const std::string where = " (HTTP " + std::to_string(status) + " from " + url + ")";
  if (status == 401) {
    if (!a.has_token)
      throw InputError("the Hub refused " + a.repo + " without a token" + where +
                       ": the model is gated or private (or does not exist). Accept its licence at " + page +
                       " while logged in, then set HF_TOKEN or save the token in ~/.cache/huggingface/token "
                       "($HF_HOME/token; `huggingface-cli login` writes it)");
    throw InputError("the Hub refused " + token + " for " + a.repo + where +
                     ": the token is invalid or expired, or the repository is private or does not exist");
  }
  if (status == 403) {
    throw InputError(a.repo + " is gated and " + (a.has_token ? token + "'s account" : "this request") +
                     " has no access" + where + ": accept the licence at " + page +
                     " with the account the token belongs to" + (error_code.empty() ? "" : " [" + error_code + "]"));
  }
  if (status == 404) {
    if (error_code == "RevisionNotFound")
      throw InputError("revision '" + a.revision + "' does not exist in " + a.repo + where);
    if (error_code == "EntryNotFound")
      throw InputError("a file listed for " + a.repo + " is missing at revision '" + a.revision + "'" + where);
    throw InputError("no model repository " + a.repo + " (or no revision '" + a.revision + "') on " + a.endpoint +
                     where + "; check the name");
  }
  throw Error("the Hub answered HTTP " + std::to_string(status) + " for " + url +
              (error_code.empty() ? "" : " [" + error_code + "]"));
}

}  // namespace repa::encoders
