"""Finding and fetching the vosk speech model the recogniser loads.

A model is a folder of Kaldi files (tens of MB); it never ships with the package, so a deployment either
fetches it once (`handoff models fetch`) into the cache folder or points `HANDOFF_VOSK_MODEL_PATH` at a
folder it already has. Everything here runs at start-up or from the CLI, never on a call's path.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from voice.errors import ModelFetchError, ModelNotFound

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "vosk-model-small-en-us-0.15"
DEFAULT_MODEL_URL = f"https://alphacephei.com/vosk/models/{DEFAULT_MODEL_NAME}.zip"
# Alpha Cephei does not publish checksums. This is the SHA-256 of the 41,205,931-byte archive as recorded,
# independently and identically, by several projects that pin it (an Arch PKGBUILD among them); a
# mismatch therefore means a changed or damaged download, and fetch_model refuses it.
DEFAULT_MODEL_SHA256: str | None = "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "handoff" / "models"
MODEL_PATH_ENV = "HANDOFF_VOSK_MODEL_PATH"

_HOW_TO_GET_ONE = (
    f"run `handoff models fetch` on a machine with internet, or set {MODEL_PATH_ENV} to an unpacked model folder"
)
_CHUNK_BYTES = 1 << 16


def model_problem(folder: Path) -> str | None:
    """Say what keeps `folder` from being a vosk model vosk can load, or None if it looks complete.

    Mirrors vosk's own `Model::Model` (src/model.cc): the v2 layout has `am/final.mdl` with its
    `conf/` and `graph/` folders, the older v1 layout keeps the same files flat in one folder; either
    needs a full decoding graph (HCLG.fst) or the pair it is composed from at run time (HCLr.fst, Gr.fst).
    """
    if not folder.is_dir():
        return "it is not a folder"
    if (folder / "am" / "final.mdl").is_file():
        required = ["conf/model.conf", "conf/mfcc.conf"]
        graph = folder / "graph"
    elif (folder / "final.mdl").is_file():
        required = ["mfcc.conf"]
        graph = folder
    else:
        return "it has neither am/final.mdl nor final.mdl"
    missing = [name for name in required if not (folder / name).is_file()]
    has_graph = (graph / "HCLG.fst").is_file() or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())
    if not has_graph:
        prefix = "" if graph == folder else "graph/"
        missing.append(f"{prefix}HCLG.fst (or {prefix}HCLr.fst with {prefix}Gr.fst)")
    return f"it lacks {', '.join(missing)}" if missing else None


def locate_model(explicit: Path | None, cache_dir: Path, name: str) -> Path:
    """Return the model folder to load: the explicit setting if given, else `cache_dir/name`.

    An explicit path may also be the folder a model archive was unpacked into (it then holds `name`).
    Raises ModelNotFound with one sentence that says where we looked and how to get a model.
    """
    if explicit is not None:
        explicit = explicit.expanduser()
        for candidate in (explicit, explicit / name):
            if model_problem(candidate) is None:
                return candidate
        if not explicit.exists():
            raise ModelNotFound(f"The vosk model folder {explicit} does not exist; {_HOW_TO_GET_ONE}.")
        raise ModelNotFound(
            f"The folder {explicit} is not a vosk model ({model_problem(explicit)}); {_HOW_TO_GET_ONE}."
        )
    cached = cache_dir.expanduser() / name
    problem = model_problem(cached)
    if problem is None:
        return cached
    if cached.exists():
        raise ModelNotFound(f"The vosk model in {cached} is incomplete ({problem}); delete it and {_HOW_TO_GET_ONE}.")
    raise ModelNotFound(
        f"No vosk speech model found (no model path was set and {cached} does not exist); {_HOW_TO_GET_ONE}."
    )


def fetch_model(url: str, sha256: str | None, cache_dir: Path, progress: bool = True) -> Path:
    """Download a zipped model, check it, and unpack it to `cache_dir/<its top folder>`; return that.

    The archive goes to a temporary file beside the target so the final move is a rename on one file
    system, and a half-finished download never looks like a model. An existing copy is replaced.
    """
    cache_dir = cache_dir.expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as scratch_name:
        scratch = Path(scratch_name)
        archive = scratch / "model.zip"
        digest = _download(url, archive, progress)
        if sha256 is not None and digest != sha256.lower():
            raise ModelFetchError(
                f"The model downloaded from {url} has SHA-256 {digest}, not the expected {sha256.lower()}; "
                "it was discarded (a retry may help if the download was damaged)."
            )
        unpacked = scratch / "unpacked"
        top = _unpack(url, archive, unpacked)
        archive.unlink()
        problem = model_problem(top)
        if problem is not None:
            raise ModelFetchError(f"The archive from {url} does not hold a vosk model: {problem}.")
        target = cache_dir / top.name
        _install(top, target, scratch)
    log.info("vosk model from %s installed in %s", url, target)
    return target


def _download(url: str, dest: Path, progress: bool) -> str:
    """Stream `url` into `dest` and return the SHA-256 of what arrived."""
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(30.0)) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with dest.open("wb") as out, _progress_bar(progress) as bar:
                task = bar.add_task(Path(urlsplit(url).path).name or url, total=total)
                for chunk in response.iter_bytes(_CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
    except httpx.HTTPStatusError as exc:
        status = exc.response
        raise ModelFetchError(
            f"Downloading the model from {url} failed: HTTP {status.status_code} {status.reason_phrase}."
        ) from exc
    except httpx.HTTPError as exc:
        raise ModelFetchError(
            f"Downloading the model from {url} failed: {type(exc).__name__}: {exc} (a retry may help)."
        ) from exc
    except OSError as exc:
        raise ModelFetchError(f"Saving the model from {url} to {dest.parent} failed: {exc}.") from exc
    return digest.hexdigest()


def _progress_bar(enabled: bool) -> Progress:
    """A download bar on stderr, so stdout stays clean for anything scripted around the CLI."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _unpack(url: str, archive: Path, dest: Path) -> Path:
    """Extract `archive` into `dest` member by member, refusing anything that would land outside it.

    Returns the folder that holds the model: the archive's single top folder, or, for an archive
    without one, a folder named after the archive's file name.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [(info, _safe_member_path(url, info)) for info in zf.infolist()]
            if not members:
                raise ModelFetchError(f"The model archive from {url} is empty.")
            tops = {path.parts[0] for _, path in members}
            nested = all(len(path.parts) > 1 or info.is_dir() for info, path in members)
            root = dest if len(tops) == 1 and nested else dest / (Path(urlsplit(url).path).stem or "model")
            for info, path in members:
                target = root.joinpath(*path.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelFetchError(f"The model archive from {url} is not a readable zip file: {exc}.") from exc
    except OSError as exc:
        raise ModelFetchError(f"Unpacking the model from {url} into {dest.parent} failed: {exc}.") from exc
    return dest / tops.pop() if root == dest else root


def _safe_member_path(url: str, info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, or ModelFetchError for absolute paths, `..`, drives or symlinks."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    parts = [part for part in path.parts if part != "."]
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    if not parts or path.is_absolute() or ".." in parts or ":" in parts[0] or is_link:
        raise ModelFetchError(
            f"The model archive from {url} has an unsafe entry {info.filename!r} "
            "(an absolute path, `..`, a drive or a link), so nothing was installed."
        )
    return PurePosixPath(*parts)


def _install(unpacked: Path, target: Path, scratch: Path) -> None:
    """Move the unpacked model into place with renames, replacing an older copy only once ready."""
    retired = scratch / "previous"  # the scratch folder, and the old copy in it, is deleted afterwards
    if target.exists():
        target.rename(retired)
    try:
        unpacked.rename(target)
    except OSError as exc:
        if retired.exists():
            retired.rename(target)
        raise ModelFetchError(f"Moving the unpacked model into {target} failed: {exc}.") from exc
