"""Fields every experiment config shares; each config file fills in or overrides its own."""

from ml_collections import config_dict


def base_config() -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    # Filled by each config file (see emollm_jax/models/config.py for the fields).
    c.model = config_dict.ConfigDict()
    # The data pipeline (emollm_jax/data/).
    c.data = config_dict.ConfigDict(
        dict(
            # EmoBench-format folder holding {train,validation,test}.jsonl and media; the main
            # job builds the mini EmoBench here when it is missing.
            dir="data/mini_emobench",
            tokenizer="emollm_jax/assets/tokenizer",
            chat_template="vicuna_v1",
            video_frames=8,
        )
    )
    return c
