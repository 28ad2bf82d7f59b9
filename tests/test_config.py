from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime import ConfigError, load_config, parse_config
from runtime._config.provider_types import KINDS

pytestmark = pytest.mark.timeout(10)

GOOD = """
default_provider = "gpt"

[retry]
attempts = 2
failover = "after_retries"

[providers.gpt]
type = "openai"
api_key = "${OPENAI_API_KEY}"
model = "gpt-4o"
rpm = 500
temperature = 0.7

[providers.claude]
type = "anthropic"
api_key = "${ANTHROPIC_API_KEY}"
model = "claude-sonnet-4-5"

[roles.coder]
providers = ["claude", "gpt"]
temperature = 0.1
max_tokens = 8000

[roles.planner]
"""
ENV = {"OPENAI_API_KEY": "sk-openai-secret-1", "ANTHROPIC_API_KEY": "sk-ant-secret-2"}


def line_of(text: str, needle: str) -> int:
    return next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", environ=ENV if environ is None else environ)
    return [str(p) for p in caught.value.problems]


def test_a_good_config_loads_with_defaults_filled_in():
    """A valid file becomes a Config with its values, the defaults, and each key's env var."""
    config = parse_config(GOOD, environ=ENV)
    assert config.retry.attempts == 2
    assert config.retry.failover == "after_retries"
    assert config.timeouts.request_s == 60.0
    assert config.providers["gpt"].api_key is not None
    assert config.providers["gpt"].api_key.get_secret_value() == "sk-openai-secret-1"
    assert config.providers["gpt"].api_key_env == "OPENAI_API_KEY"
    assert config.chain("coder") == ("claude", "gpt")


def test_a_role_without_providers_uses_the_default_provider():
    """A role with no providers of its own is cast to default_provider."""
    config = parse_config(GOOD, environ=ENV)
    assert config.chain("planner") == ("gpt",)
    assert config.chain("unconfigured") == ("gpt",)


def test_an_unknown_role_without_default_has_no_chain():
    """With no default_provider, a role that is not configured has no chain."""
    text = GOOD.replace('default_provider = "gpt"', "").replace("[roles.planner]", "")
    config = parse_config(text, environ=ENV)
    assert config.chain("coder") == ("claude", "gpt")
    assert config.chain("nobody") is None


def test_every_problem_is_reported_at_once_with_its_place():
    """Type, range, enum, env, reference and key errors all come back together, located."""
    text = GOOD.replace("attempts = 2", "attempts = -1").replace("rpm = 500", 'rpm = "many"')
    text = text.replace('"claude", "gpt"]', '"claude", "gtp"]').replace(
        'type = "anthropic"', 'type = "anthropc"'
    )
    found = problems(text, {"OPENAI_API_KEY": "x"})
    joined = "\n".join(found)
    assert "line 5: retry.attempts: must be greater than 0 (got -1)" in joined
    assert 'providers.gpt.rpm: must be a valid integer (got "many")' in joined
    assert "environment variable ANTHROPIC_API_KEY is not set" in joined
    assert 'providers.claude.type: unknown type "anthropc"; did you mean "anthropic"?' in joined
    assert 'roles.coder.providers[1]: unknown provider "gtp"; did you mean "gpt"?' in joined
    assert len(found) == 5


def test_problems_carry_the_line_they_are_on():
    """Each problem names the line of the key it is about."""
    text = GOOD.replace('"claude", "gpt"]', '"claude", "gtp"]')
    line = line_of(text, "gtp")
    assert problems(text) == [
        f'line {line}: roles.coder.providers[1]: unknown provider "gtp"; did you mean "gpt"?'
    ]


def test_an_unknown_key_suggests_the_close_one():
    """A misspelt key is named with the key it probably meant."""
    found = problems(GOOD.replace("failover =", "failovr ="))
    assert len(found) == 1
    assert "retry.failovr: unknown key 'failovr'; did you mean \"failover\"?" in found[0]


def test_a_role_cannot_override_endpoint_settings():
    """Only tuning parameters may be set per role; a model there is refused with why."""
    found = problems(GOOD.replace("max_tokens = 8000", 'max_tokens = 8000\nmodel = "gpt-4o"'))
    assert len(found) == 1
    assert "roles.coder.model: 'model' cannot be set per role" in found[0]
    allowed = "only providers, fallback_to_default, hedge_after_s, strategy, weights, slo, rules"
    assert allowed in found[0]


def test_negative_limits_are_refused():
    """Limits must be positive numbers."""
    found = problems(GOOD.replace("rpm = 500", "rpm = 500\ntpm = -10\nmax_concurrency = 0"))
    joined = "\n".join(found)
    assert "providers.gpt.tpm: must be greater than 0 (got -10)" in joined
    assert "providers.gpt.max_concurrency: must be greater than 0 (got 0)" in joined


def test_a_role_with_no_providers_and_no_default_is_an_error():
    """Without default_provider, an empty role says what to add."""
    found = problems(GOOD.replace('default_provider = "gpt"', ""))
    line = line_of(GOOD, "[roles.planner]")
    expected = (
        f"line {line}: roles.planner: no providers and no default_provider: "
        'add providers = ["..."] or set default_provider = "..."'
    )
    assert found == [expected]


def test_an_unknown_default_provider_is_an_error():
    """default_provider must name a configured provider."""
    found = problems(GOOD.replace('default_provider = "gpt"', 'default_provider = "gtp"'))
    assert found == ['line 2: default_provider: unknown provider "gtp"; did you mean "gpt"?']


def test_a_provider_listed_twice_in_a_role_is_an_error():
    """A role's chain names each provider once."""
    found = problems(GOOD.replace('"claude", "gpt"]', '"claude", "claude"]'))
    assert found[0].endswith('roles.coder.providers[1]: provider "claude" is listed twice')


def test_a_toml_syntax_error_names_its_line():
    """A file that is not TOML says so, with the line."""
    found = problems(GOOD.replace("rpm = 500", "rpm = "))
    assert len(found) == 1
    assert found[0].startswith(f"line {line_of(GOOD, 'rpm = 500')}: (file): not valid TOML")


def test_no_providers_at_all_is_an_error():
    """A config needs at least one provider."""
    assert problems("[retry]\nattempts = 1\n") == [
        "providers: required, but not set",
        "providers: no provider is configured; add [providers.<id>]",
    ]


def test_secrets_never_appear_in_errors_or_reprs():
    """A bad api_key value is reported without its value; reprs mask keys."""
    text = GOOD.replace('api_key = "${OPENAI_API_KEY}"', "api_key = 12345678")
    found = "\n".join(problems(text))
    assert "providers.gpt.api_key" in found
    assert "12345678" not in found
    config = parse_config(GOOD, environ=ENV)
    shown = repr(config) + str(config) + repr(config.providers["gpt"].endpoint())
    assert "sk-openai-secret-1" not in shown
    assert "sk-ant-secret-2" not in shown


def test_env_defaults_fill_unset_variables():
    """${VAR:-default} takes the default when VAR is unset."""
    text = GOOD.replace('model = "gpt-4o"', 'model = "${GPT_MODEL:-gpt-4o-mini}"')
    config = parse_config(text, environ=ENV)
    assert config.providers["gpt"].model == "gpt-4o-mini"
    config = parse_config(text, environ={**ENV, "GPT_MODEL": "gpt-5"})
    assert config.providers["gpt"].model == "gpt-5"


def test_role_tuning_is_kept_apart_from_provider_tuning():
    """A role's overrides and a provider's defaults are both available, unmerged."""
    config = parse_config(GOOD, environ=ENV)
    assert config.role_tuning("coder").temperature == 0.1
    assert config.role_tuning("coder").max_tokens == 8000
    assert config.providers["gpt"].tuning().temperature == 0.7


def test_a_roles_tuning_for_a_provider_is_the_roles_over_the_providers():
    """What a task of a role sends a provider: the role's values where set, else its own."""
    config = parse_config(GOOD, environ=ENV)
    tuning = config.tuning_for("coder", "gpt")
    assert (tuning.temperature, tuning.max_tokens) == (0.1, 8000)
    assert config.tuning_for("coder", "gpt") is tuning  # worked out once
    unknown = config.tuning_for("no-such-role", "gpt")
    assert unknown == config.providers["gpt"].tuning()
    assert unknown.temperature == 0.7


def test_load_config_reads_the_file_and_resolves_the_audit_path(tmp_path: Path):
    """A relative audit path is taken relative to the config file."""
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text(GOOD + '\n[audit]\npath = "logs/audit.jsonl"\n')
    config = load_config(path, environ=ENV)
    assert config.source == str(path)
    assert config.audit_path() == path.parent.resolve() / "logs" / "audit.jsonl"


def test_a_missing_file_is_a_config_error(tmp_path: Path):
    """A file that cannot be read gives a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml", environ={})


def test_metrics_and_prices_sections_are_validated_with_their_places():
    """[metrics] and [prices."model"] are checked like every other section."""
    text = GOOD + '\n[metrics]\nretain_days = -1\n\n[prices."gpt-4.1"]\ninput = 2.0\noutpt = 8.0\n'
    found = "\n".join(problems(text))
    assert "metrics.retain_days: must be greater than 0 (got -1)" in found
    assert "prices.gpt-4.1.outpt: unknown key 'outpt'; did you mean \"output\"?" in found
    assert "prices.gpt-4.1.output: required, but not set" in found


def test_prices_from_the_config_override_the_defaults(tmp_path: Path):
    """Configured prices reach the price table; the store sits beside the config file."""
    path = tmp_path / "config.toml"
    prices = '[prices."gpt-4o"]\ninput = 1.0\noutput = 2.0\ncache_write = 1.5\n'
    path.write_text(GOOD + "\n" + prices)
    config = load_config(path, environ=ENV)
    assert config.price_table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    written = config.price_table.cost("gpt-4o", 1_000_000, 0, cache_write_tokens=1_000_000)
    assert written == pytest.approx(1.5)
    assert config.metrics_path() == tmp_path.resolve() / "callboard-metrics.db"
    assert parse_config(GOOD, environ=ENV).metrics_path() is None


def test_each_provider_type_says_what_it_needs():
    """A type that needs a key or a base URL says so; compatible services need neither URL."""
    text = (
        '[providers.azure]\ntype = "azure_openai"\nmodel = "gpt-4o"\napi_key = "k"\n'
        '[providers.groq]\ntype = "groq"\nmodel = "llama-3.3-70b-versatile"\n'
        '[providers.local]\ntype = "vllm"\nmodel = "qwen"\n'
    )
    found = problems(text, {})
    assert found == [
        (
            "line 1: providers.azure.base_url: required for type azure_openai "
            "(e.g. https://<resource>.openai.azure.com)"
        ),
        'line 5: providers.groq.api_key: required for type groq (usually "${GROQ_API_KEY}")',
    ]
    fixed = text.replace('model = "llama-3.3-70b-versatile"', 'model = "x"\napi_key = "k"')
    fixed = fixed.replace(
        'api_key = "k"\n[providers.groq]',
        'api_key = "k"\nbase_url = "https://r.openai.azure.com"\n[providers.groq]',
    )
    config = parse_config(fixed, environ={})
    assert config.providers["groq"].endpoint().base_url == "https://api.groq.com/openai/v1"
    assert config.providers["local"].endpoint().api_key is None
    azure = config.providers["azure"].endpoint()
    assert azure.option("deployment") == "gpt-4o"
    assert azure.option("api_version") == "2024-10-21"


def test_type_specific_keys_and_auth_styles_belong_to_their_type():
    """region, deployment, api_version, sigv4 and entra are refused on other types, located."""
    text = (
        '[providers.gpt]\ntype = "openai"\nmodel = "gpt-4o"\napi_key = "k"\n'
        'region = "us-east-1"\nauth = "sigv4"\n'
        '[providers.claude]\ntype = "anthropic"\nmodel = "claude-sonnet-4-5"\napi_key = "k"\n'
        'deployment = "d"\nauth = "entra"\n'
        '[providers.bedrock]\ntype = "bedrock"\nmodel = "amazon.nova-pro-v1:0"\n'
        'auth = "api-key"\n'
    )
    assert problems(text, {}) == [
        "line 5: providers.gpt.region: only type bedrock takes region, not openai",
        'line 6: providers.gpt.auth: auth = "sigv4" is for type bedrock, not openai',
        (
            "line 11: providers.claude.deployment: only type azure_openai takes deployment, "
            "not anthropic"
        ),
        'line 12: providers.claude.auth: auth = "entra" is for type azure_openai, not anthropic',
        "line 13: providers.bedrock.api_key: required for type bedrock",
    ]


def test_bedrock_signs_by_default_and_takes_its_region_into_the_url():
    """A Bedrock provider needs no key (AWS credentials sign) and gets its region's URL."""
    text = '[providers.b]\ntype = "bedrock"\nmodel = "amazon.nova-pro-v1:0"\nregion = "eu-west-1"\n'
    settings = parse_config(text, environ={}).providers["b"]
    endpoint = settings.endpoint()
    assert endpoint.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert endpoint.api_key is None
    assert "AWS_ACCESS_KEY_ID" in settings.key_hint()


def test_the_readme_example_of_every_provider_type_is_a_valid_config():
    """The README's example table of each provider type loads as written, every type in it."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Provider types", 1)[1]
    block = section.split("```toml", 1)[1].split("```", 1)[0]
    variables = re.findall(r"\$\{(\w+)\}", block)
    roles = '\n[roles.all]\nproviders = ["gpt"]\n'
    config = parse_config(block + roles, environ=dict.fromkeys(variables, "k"))
    types = {settings.type for settings in config.providers.values()}
    core = {"openai", "azure_openai", "anthropic", "gemini", "bedrock", "ollama", "cohere"}
    assert types >= {*core, "replicate", "groq"}
    table = section.split("A config example for each", 1)[0]
    assert all(f"`{name}`" in table for name in KINDS)


def test_an_openai_compatible_server_of_type_openai_may_take_no_key():
    """``type = "openai"`` with its own base_url needs no key; OpenAI itself does."""
    own = '[providers.v]\ntype = "openai"\nbase_url = "http://localhost:8000/v1"\nmodel = "q"\n'
    assert parse_config(own, environ={}).providers["v"].endpoint().api_key is None
    assert problems('[providers.o]\ntype = "openai"\nmodel = "gpt-4o"\n', {}) == [
        'line 1: providers.o.api_key: required for type openai (usually "${OPENAI_API_KEY}")'
    ]


def test_the_default_provider_is_every_roles_last_resort():
    """default_provider ends every role's chain, unless it is there or the role opts out."""
    text = GOOD + (
        '\n[roles.reviewer]\nproviders = ["claude"]\n'
        '\n[roles.tester]\nproviders = ["claude"]\nfallback_to_default = false\n'
    )
    config = parse_config(text, environ=ENV)
    assert config.chain("reviewer") == ("claude", "gpt")
    assert config.chain("coder") == ("claude", "gpt")
    assert config.chain("tester") == ("claude",)
    assert config.chain("planner") == ("gpt",)
    assert config.last_resort("reviewer") == "gpt"
    assert config.last_resort("coder") is None
    assert config.last_resort("tester") is None
    assert config.last_resort("planner") is None


@pytest.mark.parametrize(
    ("kind", "given", "used"),
    [
        ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1"),
        ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com/v1"),
        ("anthropic", "https://gw.example/acct/anthropic", "https://gw.example/acct/anthropic/v1"),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        ("gemini", "https://proxy.example/v1", "https://proxy.example/v1"),
        ("openai", "https://proxy.example", "https://proxy.example"),
    ],
)
def test_a_base_url_without_its_version_gets_the_one_the_sdk_adds(kind, given, used):
    """Anthropic's and Gemini's SDKs add the version path to base_url: both forms work."""
    text = f'[providers.p]\ntype = "{kind}"\napi_key = "k"\nmodel = "m"\nbase_url = "{given}"\n'
    assert parse_config(text, environ={}).providers["p"].endpoint().base_url == used


def test_bytes_that_are_not_utf8_are_a_located_problem(tmp_path: Path):
    """A file saved in Latin-1 is refused with the line and key of each bad byte."""
    text = GOOD.replace('model = "claude-sonnet-4-5"', 'model = "claude-sonnet-4-5"  # caf\xe9')
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=ENV)
    (problem,) = caught.value.problems
    assert problem.line == line_of(text, "claude-sonnet-4-5")
    assert problem.location == "providers.claude.model"
    assert "not UTF-8" in problem.message
    assert "0xe9" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('api_key = "${ANTHROPIC_API_KEY}"', 'api_key = "sk-ant-abc\u2026xyz"', "api_key"),
        (
            'model = "claude-sonnet-4-5"',
            'model = "claude-sonnet-4-5"\nheaders = { X-Team = "r\u00e9d" }',
            "headers.X-Team",
        ),
    ],
)
def test_a_key_or_header_with_non_ascii_characters_is_refused_unshown(old, new, where):
    """A pasted ellipsis in a key is a located problem naming the character, not the key."""
    text = GOOD.replace(old, new)
    (found,) = problems(text)
    assert found.startswith(
        f"line {line_of(text, new.splitlines()[-1])}: providers.claude.{where}:"
    )
    assert "non-ASCII" in found
    assert "sk-ant-abc" not in found


def test_a_key_from_the_environment_with_non_ascii_characters_is_refused():
    """The check applies to the value ${VAR} gives, and names the variable."""
    found = problems(GOOD, environ={**ENV, "ANTHROPIC_API_KEY": "sk-ant-\u2026"})
    assert len(found) == 1
    assert "providers.claude.api_key" in found[0]
    assert "ANTHROPIC_API_KEY" in found[0]


@pytest.mark.parametrize("url", ["api.openai.com/v1", "ftp://api.openai.com/v1", "https://"])
def test_a_base_url_must_be_http_or_https_with_a_host(url):
    """base_url is checked at load: an http(s) URL with a host, or a located problem."""
    text = GOOD.replace('model = "gpt-4o"', f'model = "gpt-4o"\nbase_url = "{url}"')
    (found,) = problems(text)
    assert found.startswith(f"line {line_of(text, 'base_url')}: providers.gpt.base_url:")
    assert "http:// or https://" in found


def test_variables_are_expanded_in_every_string_of_the_file():
    """${VAR} works in metrics, audit, roles, prices and workflows, not just providers."""
    extra = (
        '[metrics]\npath = "${METRICS_DB:-m2.db}"\n'
        '[audit]\npath = "${AUDIT_LOG}"\n'
        '[workflow.ship.code]\nrole = "${CODER_ROLE:-coder}"\nprompt = "Build {goal} in ${LANG}"\n'
    )
    text = (GOOD + extra).replace(
        'providers = ["claude", "gpt"]', 'providers = ["${FIRST:-claude}", "gpt"]'
    )
    environ = {**ENV, "AUDIT_LOG": "/var/log/cb.jsonl", "LANG": "Rust", "FIRST": "gpt"}
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ=environ)
    assert [str(p) for p in caught.value.problems] == [
        f'line {line_of(text, "FIRST")}: roles.coder.providers[1]: provider "gpt" is listed twice'
    ]
    environ["FIRST"] = "claude"
    config = parse_config(text, environ=environ)
    assert config.metrics.path == "m2.db"
    assert config.audit.path == "/var/log/cb.jsonl"
    assert config.chain("coder") == ("claude", "gpt")
    assert config.workflow["ship"]["code"].role == "coder"
    assert config.workflow["ship"]["code"].prompt == "Build {goal} in Rust"


def test_an_unset_variable_anywhere_is_a_located_problem():
    """An unset variable outside provider tables is named with its place, as inside them."""
    text = GOOD + '[metrics]\npath = "${METRICS_DB}"\n'
    where = f"line {line_of(text, 'METRICS_DB')}: metrics.path"
    assert problems(text) == [f"{where}: environment variable METRICS_DB is not set"]


def test_a_doubled_dollar_keeps_a_variable_literal():
    """$${VAR} stands for the text ${VAR}, for a system prompt that must show it."""
    text = GOOD + '[workflow.w.s]\nrole = "coder"\nprompt = "{goal}"\nsystem = "Use $${HOME}"\n'
    assert parse_config(text, environ=ENV).workflow["w"]["s"].system == "Use ${HOME}"


def test_a_variable_in_a_table_name_is_refused():
    """Names are taken literally; a variable in one is a located problem saying so."""
    text = GOOD + '[prices."${MODEL}"]\ninput = 1.0\noutput = 2.0\n'
    (found,) = problems(text)
    assert found.startswith(f"line {line_of(text, 'MODEL')}: prices.${{MODEL}}:")
    assert "names are taken literally" in found


@pytest.mark.timeout(10)
def test_shared_settings_are_checked_and_their_password_is_a_secret():
    """A bad ``[shared]`` namespace is named with its place; the URL's password is redacted."""
    base = '[providers.a]\ntype = "ollama"\nmodel = "m"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config('[shared]\nnamespace = "a b"\n' + base, source="<t>", environ={})
    assert "shared.namespace" in str(caught.value)
    config = parse_config(
        '[shared]\nurl = "redis://me:s3cret-pw@h:6379/0"\n' + base, source="<t>", environ={}
    )
    assert config.shared.shown_url() == "redis://me:***@h:6379/0"
    assert "s3cret-pw" in config.secrets()
