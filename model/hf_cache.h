// Where a checkpoint lives: a directory in the official Hugging Face layout (config.json,
// tokenizer.json, *.safetensors), a repository folder of the Hugging Face hub cache
// (models--ORG--NAME, resolved to one snapshot), or a repo id (ORG/NAME) looked up in that cache.
#pragma once
#include <string>

#include "runtime/error.h"

namespace dsocr {

// The model cannot be found; the message says where dsocr looked and how to download it.
class ModelNotFound : public Error {
 public:
  using Error::Error;
};

// The hub cache folder, as huggingface_hub computes it: $HF_HUB_CACHE, else
// $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
std::string hf_hub_cache_dir();

// ORG/NAME with the characters the hub allows (letters, digits, '-', '_', '.').
bool looks_like_repo_id(const std::string& s);

// The snapshot folder of a repository folder (models--ORG--NAME): the revision named by
// refs/main when that snapshot exists, else the most recently modified snapshot holding a
// config.json, else the most recent one. "" when there is none.
std::string hf_snapshot_of_repo_dir(const std::string& repo_dir);

// The cache folder of a repo id: <hub>/models--ORG--NAME.
std::string hf_repo_dir(const std::string& hub, const std::string& repo_id);

// The shell command that downloads a repo id into the cache.
std::string hf_download_command(const std::string& repo_id);

struct ModelLocation {
  std::string dir;     // the checkpoint directory (has config.json)
  std::string origin;  // how it was found, for progress messages
};

// Resolves --model: an existing directory (a checkpoint, or a hub repository folder), else a
// repo id in the hub cache `hub` ("" = hf_hub_cache_dir()). Checks that config.json and
// tokenizer.json are present. Throws ModelNotFound with the download command for a repo id that
// is not cached, Error for a directory that is not a checkpoint.
ModelLocation resolve_model(const std::string& spec, const std::string& hub = {});

// The demo model that comes with dsocr (models/dsocr-demo in the source tree: a small
// DeepSeek-OCR trained on synthetic printed text): $DSOCR_DEMO_MODEL when set, else
// <source>/models/dsocr-demo. "" when that directory holds no config.json.
std::string bundled_demo_model_dir();

// The model used when --model is not given: `repo_id` when it is in the hub cache (`hub`, "" =
// hf_hub_cache_dir()) or no demo model is there, else the bundled demo model, with `note` saying
// so (empty otherwise).
std::string default_model_spec(const std::string& repo_id, std::string& note, const std::string& hub = {});

}  // namespace dsocr
