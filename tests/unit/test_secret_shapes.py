"""Secrets are found by their shape in text, not only by the key they sit under.

Every case plants a canary and asserts it is gone from the masked text; the "survives" cases assert
that ordinary text is left exactly as it was.
"""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalport.domain.redact import REDACTED, TextRedactor, redact, redact_config_text, redact_text

OPENAI = "sk-proj-Zq8CANARYx7Kp2mN4vB6cX9sL1dF3gH5jW0"
OPENAI_LEGACY = "sk-CANARY1234567890abcdefghijklmnopqrstuv"
NVAPI = "nvapi-CANARY_r2Xb9kLmQ4tYz7Wv1Pc3Nd5Ef8Gh0"
HF = "hf_CANARYxYzAbCdEfGhIjKlMnOpQrStUvWx12"
GITHUB = "ghp_CANARY0123456789abcdefghijklmnopqrst"
GITHUB_PAT = "github_pat_11CANARY0123456789_abcdefghijklmnopqrstuvwxyz"
GITLAB = "glpat-CANARY-0123456789abcdef"
SLACK = "xoxb-123456789012-CANARY0123456"
AWS = "AKIAIOSFODNN7CANARYX"
GOOGLE = "AIzaSyCANARY0123456789abcdefghijklmnopq"
TOKENS = [OPENAI, OPENAI_LEGACY, NVAPI, HF, GITHUB, GITHUB_PAT, GITLAB, SLACK, AWS, GOOGLE]


@pytest.mark.parametrize("token", TOKENS)
def test_a_well_known_token_shape_is_masked_with_no_key_name_around_it(token):
    line = f"2025-01-01 12:00:00 [I] connecting with {token} to the endpoint"
    out = redact_text(line)
    assert token not in out and "CANARY" not in out
    assert out.startswith("2025-01-01 12:00:00 [I] connecting with ") and out.endswith(" to the endpoint")


@pytest.mark.parametrize(
    ("text", "canary", "kept"),
    [
        (f"python -m eval --api_key {OPENAI} --hf-token {HF} --model m", "CANARY", "--model m"),
        ("run --api-key=plaincanary42 --model m", "plaincanary42", "--model m"),
        ("run --api-key 'plain canary 42' --model m", "canary", "--model m"),
        ('run --password "plain canary 42" --model m', "canary", "--model m"),
        ("run --model m --password plaincanary42", "plaincanary42", "run --model m --password "),
        ("run --model m --client-secret plaincanary42", "plaincanary42", "run --model m --client-secret "),
        ("run --model m --credentials plaincanary42", "plaincanary42", "run --model m --credentials "),
        (
            "docker run -e OPENAI_API_KEY=plaincanary42 image",
            "plaincanary42",
            "docker run -e OPENAI_API_KEY=",
        ),
        ("export HF_TOKEN='plaincanary42'; run", "plaincanary42", "; run"),
    ],
)
def test_a_secret_on_a_recorded_command_line_is_masked(text, canary, kept):
    out = redact_text(text)
    assert canary not in out and kept in out


@pytest.mark.parametrize(
    "text",
    [
        '{"command": ["python", "run.py", "--api-key", "plaincanary42", "--model", "m"]}',
        "argv=['run.py', '--password', 'plaincanary42', '--model', 'm']",
        "command:\n- python\n- --hf-token\n- plaincanary42\n- --model\n- m\n",
    ],
)
def test_a_secret_flag_in_an_argv_list_masks_the_next_item(text):
    out = redact_config_text(text)
    assert "plaincanary42" not in out and "--model" in out and "m" in out


def test_a_boolean_secret_flag_in_an_argv_list_keeps_the_next_flag():
    text = '["run.py", "--use-auth-token", "--model", "m"]'
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "canary"),
    [
        ("https://alice:plaincanary42@example.invalid/v1", "plaincanary42"),
        ("git clone https://oauth2:plaincanary42@gitlab.example.invalid/x.git", "plaincanary42"),
        ("Authorization: Bearer plaincanary42abc", "plaincanary42abc"),
        ("Authorization: Basic YWxpY2U6Y2FuYXJ5", "YWxpY2U6Y2FuYXJ5"),
        ('{"headers": {"Authorization": "Token plaincanary42"}}', "plaincanary42"),
        ("curl -H 'authorization: bearer plaincanary42abc' https://x.invalid", "plaincanary42abc"),
    ],
)
def test_credentials_in_urls_and_authorization_headers_are_masked(text, canary):
    assert canary not in redact_text(text)


def test_the_user_of_a_url_with_credentials_is_kept_and_the_password_masked():
    assert (
        redact_text("https://alice:plaincanary42@example.invalid/v1")
        == f"https://alice:{REDACTED}@example.invalid/v1"
    )


def test_a_one_line_json_private_key_is_masked_and_its_neighbours_kept():
    line = (
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQCANARYbody\\n'
        'moreCANARY\\n-----END PRIVATE KEY-----\\n", "client_email": "bot@example.invalid"}'
    )
    out = redact_text(line)
    assert "CANARY" not in out and "BEGIN PRIVATE KEY" not in out
    assert '"type": "service_account"' in out and '"client_email": "bot@example.invalid"' in out


def test_a_pem_block_with_no_key_name_is_masked():
    text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowCANARY\nabcCANARY\n-----END RSA PRIVATE KEY-----\nafter\n"
    out = redact_config_text(text)
    assert "CANARY" not in out and out.startswith("before\n") and out.endswith("after\n")


def test_an_unterminated_pem_block_is_masked_to_the_end():
    out = redact_text("key follows -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaCANARY\nmoreCANARY")
    assert "CANARY" not in out and out.startswith("key follows ")


def test_one_line_json_credentials_mapping_is_masked_whole():
    line = '{"credentials": {"user": "u", "pw": "plaincanary42", "nested": {"x": "[}"}}, "model": "m"}'
    out = redact_text(line)
    assert "plaincanary42" not in out and '"user"' not in out
    assert out.endswith('"model": "m"}')


def test_a_yaml_block_scalar_under_a_secret_key_is_masked():
    text = (
        "target:\n"
        "  private_key: |\n"
        "    -----BEGIN PRIVATE KEY-----\n"
        "    MIIEvQCANARY\n"
        "\n"
        "    -----END PRIVATE KEY-----\n"
        "  model: m\n"
        "other: 1\n"
    )
    out = redact_config_text(text)
    assert "CANARY" not in out
    assert out.startswith("target:\n  private_key: |\n") and out.endswith("  model: m\nother: 1\n")


@pytest.mark.parametrize(
    "text",
    [
        "hf_token:\n  value: plaincanary42\n  other: more\nmodel: m\n",
        "api_key:\n  - plaincanary42\n  - second\nmodel: m\n",
        "api_key:\n- plaincanary42\n- second\nmodel: m\n",
        "secret: >-\n  plaincanary42\n  folded\nmodel: m\n",
        '{\n  "credentials": {\n    "pw": "plaincanary42"\n  },\n  "model": "m"\n}\n',
    ],
)
def test_a_mapping_or_list_under_a_secret_key_in_a_file_is_masked_whole(text):
    out = redact_config_text(text)
    assert "plaincanary42" not in out and "second" not in out and "folded" not in out
    assert '"model": "m"' in out or "model: m" in out


@pytest.mark.parametrize(
    "text",
    [
        "pip install sk-learn scikit-learn",
        "risk-aware decoding for task-0001-mmlu-pro-with-a-very-long-name-2024",
        "tokenizer: gpt2",
        "max_tokens: 512",
        "api_key_name: NGC_API_KEY",
        "run --tokenizer gpt2 --max-tokens 512 --api-key-name NGC_API_KEY",
        "url: https://example.invalid:8080/v1/chat/completions",
        "basic arithmetic and bearer of news",
        "hf_dataset_name_for_the_training_split: x",
        "  api_key: null\n  hf_token:\nmodel: m\n",
        "Asia/Tokyo timezone, AKIAshort",
    ],
)
def test_ordinary_text_survives_unchanged(text):
    assert redact_text(text) == text
    assert redact_config_text(text) == text


def test_every_value_under_a_secret_key_is_masked_whatever_its_type():
    cfg = {
        "api_key": ["plaincanary1", "plaincanary2"],
        "hf_token": {"value": "plaincanary3"},
        "password": 123456789,
        "target": {"api_key_name": "NGC_API_KEY", "token_env": "HF_TOKEN", "credentials_file": "/x.json"},
        "unset_token": None,
    }
    out = redact(cfg)
    assert out["api_key"] == REDACTED and out["hf_token"] == REDACTED and out["password"] == REDACTED
    assert out["target"] == cfg["target"]
    assert out["unset_token"] is None


def test_a_command_string_in_a_config_is_masked_by_content():
    cfg = {"evaluation": {"command": f"eval --api_key {OPENAI} --hf-token plaincanary42 --limit 5"}}
    out = redact(cfg)["evaluation"]["command"]
    assert "CANARY" not in out and "plaincanary42" not in out and "--limit 5" in out


_LINES = [
    "plain line",
    "  nested: value",
    "private_key: |",
    "  -----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    '"credentials": {',
    '  "pw": "x}"',
    "},",
    "hf_token:",
    "- item",
    "- --api-key",
    f"token {OPENAI}",
    "",
    "    deeper",
]


@given(st.lists(st.sampled_from(_LINES), max_size=40), st.lists(st.integers(0, 40), max_size=6))
def test_masking_text_in_chunks_of_whole_lines_equals_masking_it_whole(lines, cuts):
    text = "".join(line + "\n" for line in lines)
    bounds = sorted({0, len(lines), *(c for c in cuts if c <= len(lines))})
    redactor = TextRedactor()
    chunks = ["".join(line + "\n" for line in lines[a:b]) for a, b in itertools.pairwise(bounds)]
    streamed = "".join(redactor.feed(chunk) for chunk in chunks) + redactor.finish()
    assert streamed == redact_text(text)
    assert "CANARY" not in streamed


def test_a_masked_yaml_file_is_still_yaml_and_a_masked_json_file_still_json():
    """A bare *** would read as a YAML alias: whole values are replaced by a quoted "***"."""
    import json

    import yaml

    from evalport.domain.redact import redact_config_text

    text = (
        "target:\n  api_endpoint:\n    api_key: sk-abcdef1234567890abcdef\n"
        "token_list: [a1234567, b]\nhf_token:\n  value: hf_abcdefghijklmnopqrstuvwx\n"
        "private_key: |\n  -----BEGIN PRIVATE KEY-----\n  MIIabc\n  -----END PRIVATE KEY-----\n"
    )
    masked = yaml.safe_load(redact_config_text(text))
    assert masked["target"]["api_endpoint"]["api_key"] == "***"
    assert masked["token_list"] == "***" and masked["hf_token"] == "***"
    assert "MIIabc" not in masked["private_key"]
    doc = {"credentials": {"type": "service_account"}, "private_key": "x", "n": 1}
    for dumped in (json.dumps(doc), json.dumps(doc, indent=2)):
        assert json.loads(redact_config_text(dumped)) == {"credentials": "***", "private_key": "***", "n": 1}
