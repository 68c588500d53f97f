import pytest

from evalport.domain.redact import REDACTED, redact, redact_config_text, redact_text


def test_secret_keys_are_masked_at_any_depth_and_references_are_kept():
    cfg = {
        "target": {"api_endpoint": {"api_key": "nvapi-1", "api_key_name": "NGC_API_KEY"}},
        "env_vars": {"HF_TOKEN": "hf_x"},
        "db": [{"password": "p"}],
        "max_tokens": 5,
    }
    out = redact(cfg)
    assert out["target"]["api_endpoint"] == {"api_key": REDACTED, "api_key_name": "NGC_API_KEY"}
    assert out["env_vars"]["HF_TOKEN"] == REDACTED
    assert out["db"][0]["password"] == REDACTED
    assert out["max_tokens"] == 5
    assert cfg["target"]["api_endpoint"]["api_key"] == "nvapi-1", "the input is not changed"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("export API_KEY=abc123 && run", "abc123"),
        ("run --token=xyz789", "xyz789"),
        ("Authorization: Bearer abcdefghijkl", "abcdefghijkl"),
        ("https://user:hunter2@host/path", "hunter2"),
        ('{"password": "hunter2"}', "hunter2"),
    ],
)
def test_inline_secrets_in_text_are_masked(text, secret):
    assert secret not in redact_text(text)


def test_config_files_keep_their_layout_and_lose_their_secrets():
    text = "target:\n  api_key: nvapi-1\n  api_key_name: NGC_API_KEY\nmax_tokens: 5\n"
    assert (
        redact_config_text(text) == 'target:\n  api_key: "***"\n  api_key_name: NGC_API_KEY\nmax_tokens: 5\n'
    )


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "NGC_API_KEY",
        "private_key",
        "aws_secret_access_key",
        "key",
        "HF_TOKEN",
        "db_password",
        "client_secret",
        "credentials",
        "Authorization",
        "hf-token",
    ],
)
def test_secret_looking_keys_are_secret(key):
    from evalport.domain.redact import is_secret_key

    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "run_key",
        "evalport.run_key",
        "sort_key",
        "primary_key",
        "api_key_name",
        "max_tokens",
        "keyword",
        "monkey",
        "tokenizer",
        "api-key-name",
        "token_env",
    ],
)
def test_ordinary_keys_are_not_secret(key):
    from evalport.domain.redact import is_secret_key

    assert not is_secret_key(key)
