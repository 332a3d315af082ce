from collections.abc import Mapping
from typing import Any

import urllib3

RequestSerialized = tuple[str, str, dict[str, str], str | None, list[str]]

class Configuration:
    retries: int | urllib3.util.retry.Retry | None
    debug: bool
    def __init__(self) -> None: ...

class RESTResponse:
    status: int
    reason: str
    data: bytes | None
    def read(self) -> bytes | None: ...
    @property
    def headers(self) -> Mapping[str, str]: ...  # urllib3's HTTPHeaderDict

class ApiClient:
    def __init__(self, configuration: Configuration | None = None) -> None: ...
    def close(self) -> None: ...
    def param_serialize(self, method: Any, resource_path: Any, path_params: Any = None, query_params: Any = None,
                        header_params: Any = None, body: Any = None, post_params: Any = None, files: Any = None,
                        auth_settings: Any = None, collection_formats: Any = None, _host: Any = None,
                        _request_auth: Any = None) -> RequestSerialized: ...
    def call_api(self, method: Any, url: Any, header_params: Any = None, body: Any = None, post_params: Any = None,
                 _request_timeout: Any = None) -> RESTResponse: ...
