"""The cluster options the one-shot commands share (``slsbot backup run``, ``slsbot restore``, ``slsbot report
--daily``): ``--kubernetes``, ``--kubeconfig``, ``--context``, and the Kubernetes API they give."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_cluster_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, what: str) -> None:
    """``--kubernetes`` (``what`` says what it does, without the final stop), ``--kubeconfig`` and ``--context``."""
    parser.add_argument("--kubernetes", action="store_true", help=f"{what}.")
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: KUBECONFIG, in a pod its ServiceAccount, else ~/.kube/config).",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one).")


def cluster_api(args: argparse.Namespace) -> Any:
    """The Kubernetes API as ``--kubeconfig``, ``KUBECONFIG`` or the pod's ServiceAccount give it. Raises
    BackendUnavailable."""
    from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or None
    return KubernetesApi(load_client_configuration(kubeconfig=kubeconfig, context=args.context))
