"""A wrong YAML fails `nginx -t` with file, line and key."""

import pytest

from conftest import basic_yaml

CASES = [
    ("providers:\n  p: { kind: openai, base_url: 'ftp://x', api_key_env: PROVIDER_KEY }\nmodels: {}\n",
     ":2: providers.p.base_url:", "must start with http"),
    ("providers:\n  p: { kind: openai, base_url: 'http://x', api_key_env: NOPE_UNSET }\n",
     ":2: providers.p.api_key_env:", "NOPE_UNSET is not set"),
    ("providers:\n  p: { kind: openai_compatible, base_url: 'http://x' }\nmodels:\n  m:\n"
     "    - { provider: q, model: m, price: { input_per_mtok: 1, output_per_mtok: 1 } }\n",
     ":5: models.m[0].provider:", "unknown provider \"q\""),
    ("providers:\n  p: { kind: openai_compatible, base_url: 'http://x', colour: blue }\n",
     ":2: providers.p.colour:", "unknown key"),
    ("providers: [\n", ":", "YAML syntax error"),
]


@pytest.mark.parametrize("yaml_text,where,what", CASES)
def test_nginx_t_names_file_line_and_key(gateway_factory, yaml_text, where, what):
    gw = gateway_factory(yaml_text)
    ok, output = gw.test_config()
    assert not ok
    assert "perpetuo.yaml" + where in output, output
    assert what in output, output


def test_unknown_strategy_directive_fails(gateway_factory, mock):
    gw = gateway_factory(basic_yaml(mock.url), http_extra="perpetuo_strategy quickest;")
    ok, output = gw.test_config()
    assert not ok and 'unknown strategy "quickest"' in output


def test_bad_redis_url_fails(gateway_factory, mock):
    gw = gateway_factory(basic_yaml(mock.url), redis_url="http://127.0.0.1:6379")
    ok, output = gw.test_config()
    assert not ok and "invalid redis URL" in output
