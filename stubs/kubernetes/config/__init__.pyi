from typing import Any

from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException as ConfigException

def load_kube_config_from_dict(config_dict: dict[str, Any], context: str | None = None,
                               client_configuration: Configuration | None = None, persist_config: bool = True,
                               temp_file_path: str | None = None) -> None: ...
