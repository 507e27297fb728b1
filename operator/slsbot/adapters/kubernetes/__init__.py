"""The Kubernetes backend: pure manifest builders (``manifests``), the mapping from cluster state to an
``ObservedRuntime`` (``observe``), the JSON API client and its error conversion (``client``), the runtime backend
(``backend``), reads and status writes of slsbot objects (``objects``), Events (``events``) and what the operator may
learn of a credentials Secret (``secrets``) and of a runtime's ServiceAccount (``service_accounts``)."""

from slsbot.adapters.kubernetes.backend import BackendOptions, KubernetesRuntimeBackend
from slsbot.adapters.kubernetes.client import (
    ClusterCredentials,
    KubernetesApi,
    cluster_credentials,
    load_client_configuration,
)
from slsbot.adapters.kubernetes.events import KubernetesEventRecorder
from slsbot.adapters.kubernetes.manifests import RuntimePodOptions, StateVolumeKind
from slsbot.adapters.kubernetes.objects import KubernetesObjectStore
from slsbot.adapters.kubernetes.secrets import KubernetesCredentialSecrets
from slsbot.adapters.kubernetes.service_accounts import KubernetesRuntimeServiceAccounts

__all__ = [
    "BackendOptions",
    "ClusterCredentials",
    "KubernetesApi",
    "KubernetesCredentialSecrets",
    "KubernetesEventRecorder",
    "KubernetesObjectStore",
    "KubernetesRuntimeBackend",
    "KubernetesRuntimeServiceAccounts",
    "RuntimePodOptions",
    "StateVolumeKind",
    "cluster_credentials",
    "load_client_configuration",
]
