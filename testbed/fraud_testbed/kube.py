"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager.

There is no scheduler or kubelet: objects are stored, validated, admitted and garbage-collected
exactly as in a cluster, but pods are never run.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from fraud_testbed.paths import THIRD_PARTY_CRDS, binary
from fraud_testbed.process import ComponentError, ManagedProcess, free_port

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
READY_TIMEOUT = 120


@dataclass(frozen=True)
class KubeCluster:
    """A running control plane and the admin kubeconfig for kopf, kubectl, helm and clients."""

    server: str
    kubeconfig: Path
    workdir: Path
    processes: tuple[ManagedProcess, ...]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run the test bed's kubectl against this cluster and return its stdout."""
        result = subprocess.run(
            [str(binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise ComponentError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig that authenticates as a service account, with a token the API issues."""
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=2h").strip()
        _write_kubeconfig(path, self.server, self.workdir / "pki" / "ca.crt", {"token": token})
        return path

    def dry_run(self, objects: list[dict]) -> int:
        """Server-side dry-run apply of `objects`; the number the API server accepted."""
        applied = self.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=dry-run",
            "-f",
            "-",
            input=yaml.safe_dump_all(objects),
        )
        return applied.count("(server dry run)")


@dataclass(frozen=True)
class _Pki:
    ca_cert: bytes
    serving_cert: bytes
    serving_key: bytes
    admin_cert: bytes
    admin_key: bytes
    service_account_key: bytes
    service_account_public_key: bytes


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(ca_key, ca_name, subject, public_key, *, is_ca=False, sans=(), client=False) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name or subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if not is_ca:
        usage = (
            x509.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _make_pki() -> _Pki:
    """A throw-away CA, a serving certificate for 127.0.0.1 and a system:masters client."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fraudpipeline-testbed-ca")])
    serving_key = ec.generate_private_key(ec.SECP256R1())
    admin_key = ec.generate_private_key(ec.SECP256R1())
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
    ]
    return _Pki(
        ca_cert=_issue(ca_key, None, ca_name, ca_key.public_key(), is_ca=True),
        serving_cert=_issue(
            ca_key,
            ca_name,
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            serving_key.public_key(),
            sans=sans,
        ),
        serving_key=_pem_key(serving_key),
        admin_cert=_issue(
            ca_key,
            ca_name,
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "testbed-admin"),
                ]
            ),
            admin_key.public_key(),
            client=True,
        ),
        admin_key=_pem_key(admin_key),
        service_account_key=_pem_key(sa_key),
        service_account_public_key=sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def _write_kubeconfig(path: Path, server: str, ca_file: Path, user: dict) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testbed",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": "testbed-user", "user": user}],
        "contexts": [
            {"name": "testbed", "context": {"cluster": "testbed", "user": "testbed-user"}}
        ],
        "current-context": "testbed",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        return response.status == 200


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


@contextlib.contextmanager
def run_control_plane(workdir: Path) -> Iterator[KubeCluster]:
    """Start etcd, kube-apiserver and kube-controller-manager; stop all three on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki_dir = workdir / "pki"
    pki_dir.mkdir(exist_ok=True)
    pki = _make_pki()
    for name, content in {
        "ca.crt": pki.ca_cert,
        "apiserver.crt": pki.serving_cert,
        "apiserver.key": pki.serving_key,
        "admin.crt": pki.admin_cert,
        "admin.key": pki.admin_key,
        "sa.key": pki.service_account_key,
        "sa.pub": pki.service_account_public_key,
    }.items():
        (pki_dir / name).write_bytes(content)
        (pki_dir / name).chmod(0o600)

    with contextlib.ExitStack() as stack:
        etcd_port, etcd_peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = ManagedProcess(
            "etcd",
            [
                binary("etcd"),
                "--name=testbed",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=testbed=http://127.0.0.1:{etcd_peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            workdir / "etcd.log",
        )
        stack.callback(etcd.stop)
        etcd.wait_until(lambda: _http_ok(f"{etcd_url}/health"), "healthy", READY_TIMEOUT)

        api_port = free_port()
        server = f"https://127.0.0.1:{api_port}"
        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                binary("kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
                f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
                f"--client-ca-file={pki_dir / 'ca.crt'}",
                f"--service-account-key-file={pki_dir / 'sa.pub'}",
                f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                "--v=1",
            ],
            workdir / "kube-apiserver.log",
        )
        stack.callback(apiserver.stop)
        ssl_context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        ssl_context.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
        apiserver.wait_until(
            lambda: _https_ok(f"{server}/readyz", ssl_context), "ready", READY_TIMEOUT
        )

        kubeconfig = workdir / "kubeconfig"
        admin = {
            "client-certificate": str(pki_dir / "admin.crt"),
            "client-key": str(pki_dir / "admin.key"),
        }
        _write_kubeconfig(kubeconfig, server, pki_dir / "ca.crt", admin)
        kcm_port = free_port()
        controller_manager = ManagedProcess(
            "kube-controller-manager",
            [
                binary("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki_dir / 'sa.key'}",
                f"--root-ca-file={pki_dir / 'ca.crt'}",
                "--controllers=*",
                "--concurrent-gc-syncs=10",
                "--v=1",
            ],
            workdir / "kube-controller-manager.log",
        )
        stack.callback(controller_manager.stop)
        insecure = ssl._create_unverified_context()  # the controller manager's own self-signed cert
        controller_manager.wait_until(
            lambda: _https_ok(f"https://127.0.0.1:{kcm_port}/healthz", insecure),
            "healthy",
            READY_TIMEOUT,
        )
        cluster = KubeCluster(server, kubeconfig, workdir, (etcd, apiserver, controller_manager))
        # The service-account controller creates "default" in every namespace once it runs.
        controller_manager.wait_until(
            lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", "default") != "",
            "creating service accounts",
            READY_TIMEOUT,
        )
        yield cluster


def install_crds(cluster: KubeCluster, directory: Path = THIRD_PARTY_CRDS) -> list[str]:
    """Server-side apply every CRD in `directory` and wait until each is Established."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ComponentError(
            f"no CRDs in {directory}: set FRAUDPIPELINE_THIRD_PARTY_CRDS to the folder "
            "holding the upstream Strimzi, spark-operator, grafana-operator and "
            "prometheus-operator CRDs"
        )
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=testbed"]
    for path in files:
        args += ["-f", str(path)]
    cluster.kubectl(*args)
    names = [
        doc["metadata"]["name"]
        for path in files
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    return names
