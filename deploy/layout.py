"""Where the local stack keeps its state, and which replica serves which model on which port.

Everything lives in one folder, ``<state_dir>/stack/``:

- ``supervisord.conf``, its socket, pid and ``logs/`` (one log per program);
- ``nginx/nginx.conf`` (generated), NGINX's pid and temp folders, ``logs/nginx-access.log``;
- ``bentoml/``: the shared BentoML model store the deploy imports into;
- ``replicas/<program>/``: each replica's own ``BENTOML_HOME``, whose model store holds one
  link to the version it serves (so each replica is pinned to its version, and the store is
  shared without copies);
- ``snapshots/``: the fallback snapshot of each deployed version;
- ``stack.json``: the slots (replica name -> program, port, model), rewritten atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.supervisor import Program
from finsimples.settings import Settings

MODEL_NAME = "finsimples-forecaster"  # bentos.model_store.BENTO_MODEL_NAME, without its imports


@dataclass(frozen=True)
class Slot:
    """One replica position behind NGINX and the process filling it.

    Attributes:
        name: The replica's stable name, sent as ``X-FinSimples-Replica`` (``replica-1``).
        program: The supervisord program serving it now (``replica-1-p3001``); a deploy
            starts a new program on a fresh port and retires this one.
        port: The program's port on the stack's host.
        model_tag: The BentoML model it serves (``finsimples-forecaster:v7-...``).
        model_version: The registry version of that model.
    """

    name: str
    program: str
    port: int
    model_tag: str
    model_version: str


@dataclass(frozen=True)
class StackLayout:
    """The stack folder's paths, from the settings."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> StackLayout:
        """The layout under ``<state_dir>/stack`` (absolute)."""
        return cls((settings.state_dir / "stack").resolve())

    @property
    def logs(self) -> Path:
        """One log file per program."""
        return self.root / "logs"

    @property
    def model_store(self) -> Path:
        """The shared BentoML home whose model store every replica links into."""
        return self.root / "bentoml"

    @property
    def nginx_conf(self) -> Path:
        """The generated NGINX config."""
        return self.root / "nginx" / "nginx.conf"

    @property
    def access_log(self) -> Path:
        """NGINX's JSON access log."""
        return self.logs / "nginx-access.log"

    @property
    def state_file(self) -> Path:
        """The slots, as JSON."""
        return self.root / "stack.json"

    def snapshot(self, model_version: str) -> Path:
        """The fallback snapshot of a registry version."""
        return self.root / "snapshots" / f"v{model_version}.json.gz"

    @property
    def deploy_lock(self) -> Path:
        """The flock of the deploy in progress (``deploy.rolling.deploy_lock``)."""
        return self.root / "deploy.lock"

    @property
    def controller(self) -> Path:
        """The deploy controller's lock, memory and decision record."""
        return self.root / "controller"

    @property
    def services_file(self) -> Path:
        """The non-replica programs as ``stack up`` defined them (``read_services``)."""
        return self.root / "services.json"

    def write_services(self, programs: list[Program]) -> None:
        """Record the stack's other programs, so a deploy from any process (the controller, a
        shell whose settings point at the stack's MLflow server) keeps exactly these."""
        staged = self.services_file.with_suffix(".tmp")
        staged.write_text(json.dumps([program.as_dict() for program in programs], indent=1))
        staged.replace(self.services_file)

    def read_services(self) -> list[Program] | None:
        """The programs ``write_services`` recorded (None: none recorded)."""
        if not self.services_file.exists():
            return None
        return [Program.from_dict(raw) for raw in json.loads(self.services_file.read_text())]

    def webhook_encryption_key(self) -> str:
        """The MLflow server's webhook-secret key, made once per stack folder (file mode 0600)."""
        from deploy.webhook import fernet_key

        path = self.root / "mlflow" / "webhook-encryption.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_suffix(".tmp")
            staged.touch(mode=0o600)
            staged.write_text(fernet_key())
            staged.replace(path)
        return path.read_text().strip()

    def replica_home(self, program: str) -> Path:
        """A replica program's own BENTOML_HOME."""
        return self.root / "replicas" / program

    def read_slots(self) -> list[Slot]:
        """The slots of the running (or last) stack; [] before the first ``stack up``."""
        if not self.state_file.exists():
            return []
        return [Slot(**slot) for slot in json.loads(self.state_file.read_text())["slots"]]

    def write_slots(self, slots: list[Slot]) -> None:
        """Record the slots (atomically: a crash leaves the old or the new file)."""
        staged = self.state_file.with_suffix(".tmp")
        staged.write_text(json.dumps({"slots": [asdict(s) for s in slots]}, indent=1))
        staged.replace(self.state_file)

    def pin_model(self, program: str, model_tag: str) -> Path:
        """Make ``program``'s BENTOML_HOME hold just ``model_tag``, linked from the shared store.

        BentoML resolves the service's ``finsimples-forecaster:latest`` through the store's
        ``latest`` file, so each replica serves exactly the version it was started for, even
        when a newer one is imported meanwhile or it is restarted.

        Returns:
            The BENTOML_HOME to start the program with.

        Raises:
            FileNotFoundError: The model is not in the shared store.
        """
        name, version = model_tag.split(":", 1)
        source = self.model_store / "models" / name / version
        if not source.is_dir():
            raise FileNotFoundError(f"model {model_tag} is not in the stack's store ({source})")
        home = self.replica_home(program)
        folder = home / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / version
        if not link.exists():
            os.symlink(source, link, target_is_directory=True)
        (folder / "latest").write_text(version)
        return home
