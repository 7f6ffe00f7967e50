import os
import shutil

import pytest

from harness import Gateway, MockProvider, Redis, key_hash, workdir

CLIENT_KEY = "sk-perpetuo-test-key"
OTHER_KEY = "sk-perpetuo-other-key"
PROVIDER_KEY = "sk-provider-secret"


@pytest.fixture
def tmpdir_path():
    path = workdir()
    yield path
    if os.environ.get("PERPETUO_KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mock(tmpdir_path):
    m = MockProvider(tmpdir_path).start()
    yield m
    m.stop()


@pytest.fixture
def redis_server(tmpdir_path):
    r = Redis(tmpdir_path).start()
    yield r
    r.stop()


def basic_yaml(mock_url, kind="openai", extra_models=""):
    return f"""
    providers:
      primary: {{ kind: {kind}, base_url: {mock_url}, api_key_env: PROVIDER_KEY }}
    models:
      gpt-4o:
        - {{ provider: primary, model: gpt-4o-2024-08-06,
            price: {{ input_per_mtok: 2.50, output_per_mtok: 10.00, cached_input_per_mtok: 1.25 }} }}
      text-embedding-3-small:
        - {{ provider: primary, model: text-embedding-3-small,
            price: {{ input_per_mtok: 0.02, output_per_mtok: 0 }} }}
      gpt-3.5-turbo-instruct:
        - {{ provider: primary, model: gpt-3.5-turbo-instruct,
            price: {{ input_per_mtok: 1.50, output_per_mtok: 2.00 }} }}
    {extra_models}
    workspaces:
      ws_123:
        api_keys_sha256: [ "{key_hash(CLIENT_KEY)}" ]
      ws_other:
        api_keys_sha256: [ "{key_hash(OTHER_KEY)}" ]
    """


@pytest.fixture
def gateway_factory(tmpdir_path):
    started = []

    def make(yaml_text, **kwargs):
        env = kwargs.pop("env", {"PROVIDER_KEY": PROVIDER_KEY})
        gw = Gateway(os.path.join(tmpdir_path, f"gw{len(started)}"), yaml_text, env=env, **kwargs)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        if gw.proc is not None:
            gw.stop()


@pytest.fixture
def gateway(gateway_factory, mock):
    return gateway_factory(basic_yaml(mock.url)).start()
