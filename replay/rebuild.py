"""Rebuilding a recorded episode's env for replay, from code the user chose.

An episode header is data written by whoever made the file. It names an env id, constructor kwargs, the env's
entry point and the wrappers applied after ``gymnasium.make``; replay shows and compares all of it, but builds envs
only from code the user chose to run:

* ids already registered with Gymnasium when replay starts: Gymnasium's own, ``trajrec/*`` after
  ``import trajrec.envs`` (the ``trajrec replay`` command does that import; Python users do it themselves), and
  ids registered by the modules the user names in ``imports`` (``--import``);
* an entry point (``module:Class``) recorded in the header only when the user names that exact string in
  ``allow_entry_points`` (``--allow-entry-point``), or when its module is one the user imported and the name is
  a Gymnasium env (or wrapper) class;
* wrappers only from ``gymnasium.wrappers`` or from the modules the user imported, and only classes that are
  Gymnasium wrappers (or the exact entry points the user allowed).

Nothing here imports a module or calls a callable because a file names it: an id like ``module:Id`` (which
``gymnasium.make`` would import), an unregistered id's namespace, a recorded entry point or wrapper outside those
rules are refused with a :class:`ReplayError` that names what was refused and the flag that allows it.
The env's own code does run, of course: replay steps it with the recorded actions (``docs/REPLAY.md``).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from trajrec.recorder.codec import Unencodable
from trajrec.recorder.errors import TrajrecError

from .render import safe

#: Wrappers whose module starts with this are Gymnasium's own and may be re-applied without an opt-in.
_GYM_WRAPPERS = "gymnasium.wrappers"


class ReplayError(TrajrecError):
    """Raised when an episode cannot be replayed: its env cannot be rebuilt (no env id in the header, an id
    that is not registered, a module that does not import, a constructor that rejects the recorded kwargs), or
    the header names code (an entry point, a wrapper, a ``module:Id`` id) that the user did not choose to run."""


def _as_list(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else [str(v) for v in values]


def _user_module(module: str, imports: list[str]) -> bool:
    """True when ``module`` is one the user imported, or a submodule of one, already loaded by that import."""
    return module in sys.modules and any(module == m or module.startswith(m + ".") for m in imports)


def _text(value: Any) -> str:
    return safe(str(value), keep_newlines=False)


def _shown(value: Any) -> str:
    # Header text goes into messages the terminal prints: control characters become visible escapes.
    return safe(repr(value), keep_newlines=False)


def rebuild_env(task: Mapping[str, Any], *, imports: Iterable[str] = (), env_id: str | None = None,
                source: str = "the episode", env_class: str | None = None,
                allow_entry_points: Iterable[str] = (), vector: str | None = None) -> Any:
    """Build the env an episode was recorded in from its header's ``task`` fields, using only chosen code.

    Args:
        task: the header's task fields (``env_id``, ``env_kwargs``, ``entry_point``, ``max_episode_steps``,
            ``wrappers``).
        imports: modules to import first (those that register third-party ids); they and their submodules
            count as code the user chose.
        env_id: build this registered id instead of the recorded one (with the recorded kwargs).
        source: names the episode in error messages.
        env_class: the recorded env class (``module.Class``), for the message when there is no id.
        vector: the class of the vector env the episode was a sub-env of (``provenance["vector"]``), if any, for
            the message when there is no id.
        allow_entry_points: exact ``module:Name`` strings from the header that the user allows to be imported
            and called (the env's entry point when its id is not registered, or a wrapper's).

    Raises:
        ReplayError: there is no id; the id is not registered; the header names code the user did not choose;
            a module in ``imports`` does not import; the env's constructor or a wrapper raises.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import EnvSpec

    imports = _as_list(imports)
    allowed = set(_as_list(allow_entry_points))
    import_modules(imports)

    chosen = env_id is not None
    env_id = env_id or task.get("env_id")
    if not env_id and vector:
        raise ReplayError(
            f"cannot rebuild the env of {source}: it was recorded as a sub-env of a {vector} whose sub-envs carry no "
            "gymnasium spec (no env id, no constructor arguments to rebuild it from): build the vector env with "
            "gymnasium.make_vec('ID', ...) or from gymnasium.make('ID') calls to record the id. To replay this one, "
            "pass the env yourself: replay_episode(path, env=MyEnv(...)), or name a registered id that builds the "
            "same env: trajrec replay FILE --env ID")
    if not env_id:
        what = f"an instance of {env_class}" if env_class else "an env object"
        raise ReplayError(
            f"cannot rebuild the env of {source}: it was recorded from {what} constructed directly, not through "
            "gymnasium.make, so the header holds no env id and no constructor arguments to rebuild it from. "
            "To make episodes replayable, register the env (gymnasium.register(id='mypkg/MyEnv-v0', "
            "entry_point='mypkg.module:MyEnv')) and record Recorder(gymnasium.make('mypkg/MyEnv-v0'), ...). "
            "To replay this one, pass the env yourself: replay_episode(path, env=MyEnv(...)), or name a registered "
            "id that builds the same env: trajrec replay FILE --env ID")
    if not isinstance(env_id, str):
        raise ReplayError(f"cannot rebuild the env of {source}: its recorded env id is {_shown(env_id)}, not a "
                          "string; name a registered id: trajrec replay FILE --env ID")
    raw_kwargs = task.get("env_kwargs") or {}
    if not isinstance(raw_kwargs, Mapping) or not all(isinstance(k, str) for k in raw_kwargs):
        raise ReplayError(f"cannot rebuild {_text(env_id)} for {source}: the recorded env_kwargs "
                          f"{_shown(raw_kwargs)[:200]} are not a map of names to values; replay in Python with "
                          "replay_episode(path, env=gymnasium.make(...))")
    kwargs = dict(raw_kwargs)
    bad = [k for k, v in kwargs.items() if _holds_unencodable(v)]
    if bad:
        raise ReplayError(f"cannot rebuild {_text(env_id)} for {source}: constructor argument(s) "
                          f"{', '.join(_shown(b)[1:-1] for b in bad)} were not plain data, so the recording only "
                          "holds their repr; replay in Python with replay_episode(path, env=gymnasium.make(...)) "
                          "passing the real values")
    make_kwargs: dict[str, Any] = {}
    max_steps = task.get("max_episode_steps")
    if isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps > 0:
        make_kwargs["max_episode_steps"] = max_steps
    if task.get("disable_env_checker") is True:
        make_kwargs["disable_env_checker"] = True

    target: str | EnvSpec = env_id
    if ":" in env_id:
        # gymnasium.make("module:Id") imports `module`: only a module the user imported may be named so.
        module = env_id.split(":", 1)[0]
        if not _user_module(module, imports):
            why = ("replay imports only modules you choose with --import" if chosen else
                   "which the episode file names; files are data and replay imports only modules you choose")
            raise ReplayError(
                f"refusing to rebuild env id {_shown(env_id)} {_origin(chosen, source)}: gymnasium.make would import "
                f"module {_shown(module)}, {why}. If you trust that module: trajrec replay FILE --import {module} "
                f"(replay_episode(path, imports=[{module!r}]) in Python)")
    elif env_id not in gym.registry:
        entry_point = task.get("entry_point")
        if chosen or not isinstance(entry_point, str) or not entry_point:
            raise ReplayError(_unregistered_message(env_id, source, gym.registry, chosen))
        if env_id.startswith("trajrec/") and entry_point not in allowed:
            # A built-in id: the fix is importing trajrec.envs, not trusting the recorded entry point.
            raise ReplayError(_unregistered_message(env_id, source, gym.registry))
        creator = _resolve_entry_point(entry_point, imports, allowed, gym.Env, "env", env_id, source)
        target = EnvSpec(id=env_id, entry_point=creator, max_episode_steps=make_kwargs.get("max_episode_steps"))
        make_kwargs = {}
    try:
        env = gym.make(target, **make_kwargs, **kwargs)
    except gym.error.Error as exc:
        raise ReplayError(f"cannot rebuild {_text(env_id)} for {source}: gymnasium.make raised "
                          f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the env's own constructor: any type; the message carries it
        raise ReplayError(f"cannot rebuild {_text(env_id)} for {source} with the recorded kwargs {_shown(kwargs)}: "
                          f"the constructor raised {type(exc).__name__}: {exc}") from exc
    try:
        return apply_wrappers(env, task.get("wrappers") or [], source, imports=imports, allow_entry_points=allowed)
    except BaseException:
        env.close()
        raise


def _resolve_entry_point(entry_point: str, imports: list[str], allowed: set[str], base: type, what: str,
                         owner: str, source: str) -> Any:
    """The callable a recorded ``module:Name`` entry point names, when the user chose that code; else raise."""
    flag = (f"trajrec replay FILE --allow-entry-point '{entry_point}' (allow_entry_points=[{entry_point!r}] in "
            "Python)")
    module, sep, name = entry_point.partition(":")
    if not sep or not module or not name or not all(p.isidentifier() for p in module.split(".")) \
            or not all(p.isidentifier() for p in name.split(".")):
        raise ReplayError(f"cannot rebuild the {what} of {_shown(owner)} recorded in {source}: its entry point "
                          f"{_shown(entry_point)} is not of the form module:Name")
    if entry_point in allowed:
        from gymnasium.envs.registration import load_env_creator

        try:
            return load_env_creator(entry_point)
        except Exception as exc:  # importing a third-party module: any type; the message carries it
            raise ReplayError(f"cannot load {what} entry point {_shown(entry_point)} (allowed on the command line) "
                              f"for {source}: {type(exc).__name__}: {exc}") from exc
    gym_module = what == "wrapper" and (module == _GYM_WRAPPERS or module.startswith(_GYM_WRAPPERS + "."))
    if gym_module or _user_module(module, imports):
        try:
            obj: Any = importlib.import_module(module) if gym_module else sys.modules[module]
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ReplayError(f"cannot re-apply {what} {_shown(entry_point)} recorded in {source}: "
                              f"{type(exc).__name__}: {exc}") from exc
        if isinstance(obj, type) and issubclass(obj, base):
            return obj
        raise ReplayError(f"refusing {what} entry point {_shown(entry_point)} recorded in {source}: it names "
                          f"{type(obj).__name__} {_shown(getattr(obj, '__qualname__', obj))[1:-1]}, not a Gymnasium "
                          f"{'wrapper' if what == 'wrapper' else 'env'} class. If you trust it: {flag}")
    if what == "wrapper":
        where, other = ("Gymnasium's own wrappers or modules you import",
                        "import the module that defines the wrapper: trajrec replay FILE --import MODULE")
    else:
        where, other = ("ids registered by modules you import",
                        "import the module that registers the env: trajrec replay FILE --import MODULE")
    raise ReplayError(f"refusing to import {what} entry point {_shown(entry_point)} named in the header of {source} "
                      f"(for {_shown(owner)}): episode files are data, and replay runs only {where}. If you trust "
                      f"that code: {flag}, or {other}")


def apply_wrappers(env: Any, wrappers: Any, source: str, *, imports: Iterable[str] = (),
                   allow_entry_points: Iterable[str] = ()) -> Any:
    """Apply the wrappers the recording saw on top of ``gymnasium.make``'s env, innermost first.

    Only Gymnasium's own wrappers, wrapper classes of modules in ``imports``, and the exact entry points in
    ``allow_entry_points`` are applied; anything else raises :class:`ReplayError` before any call.
    """
    import gymnasium as gym

    imports = _as_list(imports)
    allowed = set(_as_list(allow_entry_points))
    if not isinstance(wrappers, list):
        raise ReplayError(f"cannot re-apply the wrappers recorded in {source}: task.wrappers is "
                          f"{type(wrappers).__name__}, not a list")
    for w in wrappers:
        if not isinstance(w, Mapping):
            raise ReplayError(f"cannot re-apply wrapper {_shown(w)[:80]} recorded in {source}: not a map")
        name, entry_point, wkwargs = w.get("name"), w.get("entry_point"), w.get("kwargs") or {}
        if not isinstance(entry_point, str):
            raise ReplayError(f"cannot re-apply wrapper {_shown(name)} recorded in {source}: it has no importable "
                              "entry point; replay in Python with replay_episode(path, env=...) wrapping the env "
                              "yourself")
        if not isinstance(wkwargs, Mapping) or not all(isinstance(k, str) for k in wkwargs):
            raise ReplayError(f"cannot re-apply wrapper {_shown(name)} recorded in {source}: its kwargs are not a map "
                              "of names to values")
        bad = [k for k, v in wkwargs.items() if _holds_unencodable(v)]
        if bad:
            raise ReplayError(f"cannot re-apply wrapper {_shown(name)} recorded in {source}: argument(s) "
                              f"{', '.join(_shown(b)[1:-1] for b in bad)} were not plain data; replay in Python "
                              "with replay_episode(path, env=...)")
        wrapper_cls = _resolve_entry_point(entry_point, imports, allowed, gym.Wrapper, "wrapper", str(name), source)
        try:
            env = wrapper_cls(env, **dict(wkwargs))
        except Exception as exc:  # a third-party wrapper: any type; the message carries it
            unknown = ("; its constructor arguments were not recorded (task.wrappers kwargs null: it is not a "
                       "gymnasium.utils.RecordConstructorArgs), so it was called with env alone; replay in Python "
                       "with replay_episode(path, env=...)") if "kwargs" in w and w["kwargs"] is None else ""
            raise ReplayError(f"cannot re-apply wrapper {_shown(name)} ({_shown(entry_point)}) recorded in "
                              f"{source}: {type(exc).__name__}: {exc}{unknown}") from exc
    return env


def import_modules(modules: Iterable[str] | str) -> None:
    """Import each module (those that register env ids); raise :class:`ReplayError` naming one that fails."""
    for module in _as_list(modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ReplayError(f"cannot import {module!r} (given to import before replaying): "
                              f"{type(exc).__name__}: {exc}; check the module name and that its package is "
                              "installed in this Python (a module of your own: run from the folder that holds it, "
                              "or add that folder to PYTHONPATH)") from exc


def _origin(chosen: bool, source: str) -> str:
    """Where an env id came from, for a message: the user's ``--env`` (``env_id=``) or the episode's header."""
    return "given with --env (env_id= in Python)" if chosen else f"recorded in {source}"


def _unregistered_message(env_id: str, source: str, registry: Mapping[str, Any], chosen: bool = False) -> str:
    ids = sorted(registry)
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.5)
    nearest = (f"nearest registered ids: {', '.join(close)}" if close
               else f"no registered id is close ({len(ids)} ids are registered)")
    if env_id.startswith("trajrec/"):
        return (f"env id {_shown(env_id)} {_origin(chosen, source)} is not registered with gymnasium ({nearest}). "
                "trajrec's built-in envs register on import: `import trajrec.envs` before replay_episode() in "
                "Python (the trajrec replay command does it for you)")
    return (f"env id {_shown(env_id)} {_origin(chosen, source)} is not registered with gymnasium ({nearest}). "
            "Import the module that registers it before replaying: `trajrec replay FILE --import mypkg.envs`, "
            "or replay_episode(path, imports=['mypkg.envs']) in Python; replay does not import modules an episode "
            "file names")


def _holds_unencodable(value: Any) -> bool:
    stack = [value]
    while stack:  # iterative: a recorded value may nest deeper than Python's recursion limit
        v = stack.pop()
        if isinstance(v, Unencodable):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False
