"""The training run: set-up (mesh, model, optimizer, data, checkpoints), the step loop, and
saving on the way out (end of run, SIGTERM, too many non-finite steps, or a crash). Around the
loop: the persistent compilation cache (``compile_cache.py``), the event log the goodput report
reads (``events.py``), the hang watchdog (``watchdog.py``) and the checkpoint tiers
(``checkpoint/tiers.py``)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from emollm_jax.checkpoint import tiers
from emollm_jax.checkpoint.manager import CheckpointSaveError, RunCheckpoints, checkpoint_root
from emollm_jax.checkpoint.restore import params_target
from emollm_jax.config.model import FORWARD_ONLY, ModelConfig, from_config_dict, to_dict
from emollm_jax.convert.hf_io import load_hf
from emollm_jax.data.bad_input import BadRecordError
from emollm_jax.data.global_batch import to_global
from emollm_jax.data.pipeline import train_dataset
from emollm_jax.emoprompt import hook_from_config
from emollm_jax.errors import ConfigError
from emollm_jax.folder_lock import FolderLock
from emollm_jax.inference.load import load_hf_or_run
from emollm_jax.models.build import abstract_model, build_model, build_part
from emollm_jax.models.compose import compose
from emollm_jax.paths import AnyPath, as_path
from emollm_jax.sharding.mesh import mesh_and_rules
from emollm_jax.train import compile_cache, distributed, flops, partition, resume, validate
from emollm_jax.train.events import EventLog, StepWindow
from emollm_jax.train.metrics_log import MetricsLog
from emollm_jax.train.profile import StepProfiler
from emollm_jax.train.program import build_train_program
from emollm_jax.train.state import TrainState
from emollm_jax.train.watchdog import Watchdog

log = logging.getLogger(__name__)

TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class NonFiniteError(RuntimeError):
    """Too many consecutive non-finite losses or gradients."""


class Terminated(SystemExit):
    """SIGTERM arrived; a checkpoint was saved."""


def _prompt_hook(config):
    """EmoPrompt's record rewriter when the config turns it on (None otherwise)."""
    return hook_from_config(config)


def _differing_fields(a: ModelConfig, b: ModelConfig, ignore=()) -> list[str]:
    """ModelConfig fields (those that shape parameters) in which ``a`` and ``b`` differ."""
    forward_only = {*FORWARD_ONLY, *ignore}
    da, db = to_dict(a), to_dict(b)
    return sorted(k for k in da if k not in forward_only and da[k] != db.get(k))


def _initial_model(config, model_cfg, mesh, rules):
    """Fresh parameters, or pretrained ones: ``train.init_from`` (an Orbax run/checkpoint of
    this very model, or a HF folder: a LLaVA whose towers, and projector where shapes allow,
    are carried over — ``models/compose.py``), ``train.init_vision_from`` (a HF CLIP vision
    folder) and ``train.init_llm_from`` (a HF LLM folder). Whatever they do not provide
    (e.g. EmoLLM's new perspectives, LoRA adapters) starts fresh."""
    tc = config.train
    forward = {k: getattr(model_cfg, k) for k in FORWARD_ONLY}
    source, step = None, None
    if tc.init_from:
        where = "config.train.init_from"
        # The parameters themselves: a run goes on from where the other stopped, not from the
        # moving average that run may keep of them.
        source, step = load_hf_or_run(
            tc.init_from, what=where, mesh=mesh, rules=rules, weights="params", **forward
        )
    if step is not None:  # an Orbax run (a Hugging Face folder has no step)
        model = source
        # LoRA may be switched on for this run only: adapters then start fresh.
        differing = _differing_fields(model.config, model_cfg, ignore=("lora",))
        if differing:
            raise ConfigError(
                "train.init_from",
                f"its model differs from config.model in {', '.join(differing)}",
                value=tc.init_from,
            )
        log.info("initial weights from %s", tc.init_from)
        if model.config.lora == model_cfg.lora:
            return model
        parts = {"language_model": model.language_model}
        if model_cfg.arch == "llava":
            parts |= {"vision": model.vision_tower, "projector": model.projector}
        else:
            raise ConfigError(
                "model.lora", "adding adapters to a bare LLM's checkpoint is not supported"
            )
        return compose(model_cfg, **parts, seed=config.seed, mesh=mesh, rules=rules)
    parts = {} if source is None else {"source": source}
    parts |= {
        name: load_hf(path, mesh=mesh, rules=rules, **forward)
        for name, path in (
            ("vision", tc.init_vision_from),
            ("language_model", tc.init_llm_from),
        )
        if path
    }
    if not parts and model_cfg.arch == "llava":
        # Fresh parts of their own seeds (stand-ins for pretrained ones, the same in every run);
        # the rest from config.seed, as build_model.
        fixed = (("vision", "vision_tower", tc.vision_seed),
                 ("language_model", "language_model", tc.llm_seed))
        parts = {name: build_part(model_cfg, part, seed, mesh=mesh, rules=rules)
                 for name, part, seed in fixed if seed >= 0}
    if not parts:
        return build_model(model_cfg, config.seed, mesh=mesh, rules=rules)
    if model_cfg.arch != "llava":
        model = parts.get("source") or parts.get("language_model")
        differing = _differing_fields(model.config, model_cfg)
        if differing or model_cfg.lora.rank:
            raise ConfigError(
                "train.init_from",
                f"the HF model differs from config.model in "
                f"{', '.join(differing) or 'lora (not supported for a bare LLM yet)'}",
                value=tc.init_from,
            )
        return model
    log.info("initial weights from %s", {k: str(v) for k, v in parts.items()})
    return compose(model_cfg, **parts, seed=config.seed, mesh=mesh, rules=rules)


def _batch_flops(cfg: ModelConfig, batch: dict, train_vision: bool) -> float:
    b, s = batch["input_ids"].shape
    b *= jax.process_count()
    frames = batch["pixel_values"].shape[1] if "pixel_values" in batch else 0
    return flops.train_step_flops(cfg, b, s, frames, train_vision)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) arrived; the steps finished were logged and a checkpoint was saved."""


class _StopWaiting(Exception):
    """A stop signal interrupted the wait for a batch."""


class _StopSignals:
    """SIGTERM and the first Ctrl-C (SIGINT) set ``signum``: the loop finishes the step in
    flight, logs it, saves and stops. Only while ``waiting()`` (for data, which may never come)
    does the handler raise (``_StopWaiting``), and the batch being fetched is not trained on.
    Everywhere else the signal only sets the flag: a ``KeyboardInterrupt`` raised at an
    arbitrary point could land between a step's dispatch (which donates the old state) and
    the assignment of the new one, or between two book-keeping statements, and leave nothing
    consistent to save. A second Ctrl-C raises ``KeyboardInterrupt`` at once (no save). A
    SIGINT that the process was started ignoring (a shell's background job) stays ignored."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._waiting = False

    def __enter__(self):
        def handler(signum, frame):
            if signum == signal.SIGINT:  # the next Ctrl-C goes to Python's: KeyboardInterrupt
                signal.signal(signal.SIGINT, self._previous[signal.SIGINT])
            self.signum = self.signum or signum
            name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            if self._waiting:
                log.warning("%s while waiting for data: saving a checkpoint, then exiting", name)
                self._waiting = False
                raise _StopWaiting
            again = " (Ctrl-C again: stop at once, unsaved)" if name == "Ctrl-C" else ""
            log.warning("%s: saving a checkpoint after this step, then exiting%s", name, again)

        for signum in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue
            self._previous[signum] = signal.signal(signum, handler)
        return self

    @property
    def raised(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def waiting(self):
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        return False


class Trainer:
    """Everything a run needs, set up from a config: mesh, sharded state (fresh, from
    ``train.init_from``, or resumed from the run's latest checkpoint), data, the jitted step."""

    def __init__(self, config, workdir: str | AnyPath, devices=None):
        # The typed sections (config/sections.py), checked before the workdir is created.
        self.sections = sections = validate.check_before_start(config)
        distributed.maybe_initialize(sections.distributed)
        self.config = config
        self.workdir = workdir = as_path(workdir)  # a local folder or a gs:// URL
        workdir.mkdir(parents=True, exist_ok=True)
        # One run per workdir (process 0 holds it for all); released by close(). Taken before
        # anything is written there: a workdir another run holds is left as it was.
        self._lock = FolderLock(workdir, "training workdir")
        if jax.process_index() == 0:
            self._lock.acquire()
        self.events = EventLog(workdir)
        self.events.write("start", processes=jax.process_count(), devices=jax.device_count())
        compile_cache.enable(sections.train.compile_cache_dir, workdir)
        try:
            self._set_up(config, workdir, devices)
        except BaseException as e:
            self.events.write("crash", step=None, error=repr(e)[:500])
            for tier in ("checkpoints", "local_checkpoints"):
                if getattr(self, tier, None) is not None:
                    getattr(self, tier).close()
            self._lock.release()
            raise

    def _set_up(self, config, workdir: AnyPath, devices) -> None:
        self.model_cfg = model_cfg = from_config_dict(config.model)
        self.mesh, self.rules = mesh, rules = mesh_and_rules(config, devices)
        validate.check(config, model_cfg, mesh, rules)
        log.info(
            "mesh %s, strategy %s, %d processes",
            dict(mesh.shape),
            config.mesh.strategy,
            jax.process_count(),
        )

        # Abstract state and shardings first: nothing is allocated before we know where it goes.
        # The program is the one `python -m emollm_jax.compile` compiles ahead of time.
        self.program = program = build_train_program(config, mesh, rules)
        self.trainable_filter = program.trainable_filter
        self.tx = tx = program.tx
        self.replicated = replicated = program.replicated
        self.state_shardings = program.state_shardings
        abstract_full = nnx.state(abstract_model(model_cfg))

        self.iterator = iter(train_dataset(config, prompt_hook=_prompt_hook(config)))
        root = checkpoint_root(workdir / "checkpoints")
        if jax.process_index() == 0:
            resume.abandon_later_steps(root, self.sections.train, workdir)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("emollm_resume_step")
        ck = self.sections.checkpoint
        self.checkpoints = RunCheckpoints(root, keep=ck.keep, async_save=ck.async_save)
        self.local_checkpoints, source, latest = None, self.checkpoints, None
        wanted = resume.resume_step(self.checkpoints, self.sections.train)
        choice = tiers.Choice(tiers.PERSISTENT, wanted, "")
        if ck.local_dir:
            local_root = tiers.local_root(ck.local_dir, workdir)
            explicit = self.sections.train.resume_step >= 0  # the persistent tier's step
            if not explicit:
                choice = tiers.choose(choice.step, tiers.complete_steps(local_root))
            tiers.prune_local(local_root, choice.step)
            self.local_checkpoints = RunCheckpoints(
                local_root, keep=ck.local_keep, async_save=ck.async_save, per_process=True
            )
            if choice.step is not None:
                why = (choice.step, choice.tier, choice.reason)
                log.info("restoring step %d from the %s tier (%s)", *why)
            if choice.tier == tiers.LOCAL:
                source = self.local_checkpoints
        latest = choice.step
        if latest is not None:
            resume.check_same_config(source, latest, to_dict(model_cfg), config.train)
            # None: saved by as many processes as now, each restores its own iterator state
            data_state = resume.data_state(source, latest, config)
            restore_started = time.perf_counter()
            ema = program.abstract_state.ema
            kept = ema is not None and source.ema_tree(latest) is not None
            restored = resume.restore(
                source,
                latest,
                lambda step: source.restore(
                    step,
                    params=params_target(abstract_full, mesh, rules),
                    opt_state=program.abstract_state.opt_state,
                    train={
                        "step": jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated),
                        "rng": jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated),
                    },
                    data_iterator=self.iterator if data_state is None else None,
                    ema=nnx.to_pure_dict(ema) if kept else None,
                ),
            )
            if data_state is not None:
                self.iterator.set_state(data_state)
            nnx.replace_by_pure_dict(abstract_full, restored["params"])
            model = nnx.merge(nnx.graphdef(abstract_model(model_cfg)), abstract_full)
            graphdef, trainable, frozen = partition.split(model, self.trainable_filter)
            if kept:
                ema = jax.tree.map(lambda x: x, trainable)  # the structure, then the values
                nnx.replace_by_pure_dict(ema, restored["ema"])
            elif ema is not None:
                log.info("checkpoint %d keeps no moving average: it starts from its parameters",
                         latest)  # fmt: skip
                ema = self._copy_trainable(trainable)
            self.state = TrainState(
                step=restored["train"]["step"],
                trainable=trainable,
                frozen=frozen,
                opt_state=restored["opt_state"],
                rng=jax.random.wrap_key_data(restored["train"]["rng"]),
                ema=ema,
            )
            seconds = time.perf_counter() - restore_started
            self.events.write("restore", tier=choice.tier, step=latest, seconds=seconds)
            log.info("resumed from checkpoint %d (%s tier, %.1f s)", latest, choice.tier, seconds)
        else:
            model = _initial_model(config, model_cfg, mesh, rules)
            graphdef, trainable, frozen = partition.split(model, self.trainable_filter)
            # Created by jitted functions: a plain device_put cannot reach other hosts' devices.
            step0, rng = jax.jit(
                lambda: (jnp.zeros((), jnp.int32), jax.random.key(config.seed)),
                out_shardings=(replicated, replicated),
            )()
            self.state = TrainState(
                step=step0,
                trainable=trainable,
                frozen=frozen,
                opt_state=jax.jit(tx.init, out_shardings=self.state_shardings.opt_state)(trainable),
                rng=rng,
                ema=None if program.abstract_state.ema is None else self._copy_trainable(trainable),
            )
        if jax.process_index() == 0:  # only now: a refused resume leaves the stored one as is
            (workdir / "train_config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
        self.graphdef = graphdef
        self._step = program.step
        # The data iterator's state before the batch being fetched: what a save made while
        # that fetch was interrupted (SIGTERM, an error) must store.
        self._data_state_before_next = None
        self.meta = {
            "model": to_dict(model_cfg),
            "config": json.loads(config.to_json_best_effort()),
        }

    def _copy_trainable(self, trainable: nnx.State) -> nnx.State:
        """A copy of ``trainable`` in buffers of its own (the step donates both), sharded as
        it: where a moving average of the parameters starts."""
        copy = jax.jit(lambda t: jax.tree.map(jnp.copy, t), out_shardings=self.state_shardings.ema)
        return copy(trainable)

    @property
    def step(self) -> int:
        return int(jax.device_get(self.state.step))

    def model(self) -> nnx.Module:
        """The current model (sharing the state's arrays)."""
        return nnx.merge(self.graphdef, self.state.trainable, self.state.frozen)

    def train_step(self, batch: dict) -> dict:
        """One step on a per-process numpy batch; returns the step's metrics (on device)."""
        self.state, metrics = self._step(self.state, to_global(batch, self.mesh, self.rules))
        return metrics

    def save(self, force: bool = True, tier: str = tiers.PERSISTENT, wait: bool = False) -> float:
        """Save the current step into ``tier`` (nothing when it holds that step already;
        ``wait``: until written); returns the seconds the caller was blocked."""
        checkpoints = self.checkpoints if tier == tiers.PERSISTENT else self.local_checkpoints
        state = self.state
        step = self.step
        started = time.perf_counter()
        saved = False
        if checkpoints.latest_step() != step:
            params = nnx.to_pure_dict(nnx.merge_state(state.trainable, state.frozen))
            saved = checkpoints.save(
                step,
                params=params,
                opt_state=state.opt_state,
                train={"step": state.step, "rng": jax.random.key_data(state.rng)},
                meta=self.meta | {"step": step},
                data_iterator=self.iterator,
                data_state=self._data_state_before_next,
                ema=None if state.ema is None else nnx.to_pure_dict(state.ema),
                force=force,
            )
        if wait:
            checkpoints.wait()
        blocked = time.perf_counter() - started
        if saved:
            self.events.write("checkpoint", tier=tier, step=step, blocked_s=blocked)
        return blocked

    def _next_batch(self, stop: _StopSignals) -> dict:
        """The next batch; SIGTERM or Ctrl-C interrupts the wait (``_StopWaiting``)."""
        self._data_state_before_next = self.iterator.get_state()
        with stop.waiting():
            batch = next(self.iterator)
        self._data_state_before_next = None
        return batch

    def train(self) -> dict:
        """The step loop up to ``train.steps``; returns the last logged metrics."""
        tc, log_cfg = self.config.train, self.sections.log
        start = self.step
        peak, peak_source = flops.peak_flops_per_device()
        log.info("peak FLOP/s per device: %.3g (%s)", peak, peak_source)
        profiler = StepProfiler(tc.profile, self.workdir)
        metrics_log = MetricsLog(
            self.workdir,
            total_steps=tc.steps,
            start_step=start,
            tensorboard=log_cfg.tensorboard,
            progress_bar=log_cfg.progress_bar,
        )
        last: dict = {}
        window = {"tokens": 0.0, "flops": 0.0, "start": time.perf_counter()}
        window |= {f"ckpt_blocked_s_{tier}": 0.0 for tier in self._tiers()}
        pending = None  # (step, metrics, flops) of the step in flight
        self.events.write("ready", step=start)
        compiled = compile_cache.CompileCounter()
        steps = StepWindow()

        def on_hang(idle_s: float, limit_s: float) -> None:
            steps.flush(self.events, compiled.take())
            self.events.write("hang", step=steps.last, idle_s=idle_s, limit_s=limit_s)
            self._lock.release()  # the restart may come up on another host

        watchdog = Watchdog(tc.hang_timeout_s, tc.hang_first_step_timeout_s, on_hang).start()

        def finished(pending) -> None:  # book-keep a step whose metrics have arrived
            nonlocal last
            last = self._account(pending, window, metrics_log, peak) or last
            steps.step_done(pending[0])
            watchdog.step_done()
            if pending[0] == start + 1 or pending[0] % log_cfg.every_steps == 0:
                steps.flush(self.events, compiled.take())

        def save(tier: str, **kwargs) -> None:
            blocked = self.save(tier=tier, **kwargs)
            steps.blocked_s += blocked
            window[f"ckpt_blocked_s_{tier}"] += blocked
            watchdog.progress()

        try:
            with _StopSignals() as stop:
                for step in range(start, tc.steps):
                    if stop.raised:
                        break
                    waited = time.perf_counter()
                    try:
                        batch = self._next_batch(stop)
                    except _StopWaiting:
                        break
                    finally:
                        steps.data_s += time.perf_counter() - waited
                    batch_flops = _batch_flops(self.model_cfg, batch, tc.train_vision)
                    profiler.before(step + 1)
                    metrics = self.train_step(batch)
                    profiler.after(step + 1, metrics)
                    if pending is not None:  # read the previous step while this one runs
                        finished(pending)
                    pending = (step + 1, metrics, batch_flops)
                    for tier, every in self._tiers().items():
                        if (step + 1) % every == 0:
                            save(tier, force=False)
                    self._check_for_errors()  # a failed background save stops now
                if pending is not None:
                    finished(pending)  # every step done has its row before the save
                steps.flush(self.events, compiled.take())
                if stop.raised:
                    why = "Ctrl-C" if stop.signum == signal.SIGINT else "SIGTERM"
                    log.warning("stopped by %s at step %d; saving a checkpoint", why, self.step)
                save(tiers.PERSISTENT, wait=True)
                if stop.signum == signal.SIGTERM:
                    self.events.write("preempted", step=self.step)
                    raise Terminated(TERMINATED_EXIT_CODE)
                if stop.signum == signal.SIGINT:
                    self.events.write("interrupted", step=self.step, saved=True)
                    raise Interrupted
                self.events.write("stop", step=self.step)
        except (Terminated, Interrupted, NonFiniteError, CheckpointSaveError) as e:
            if not isinstance(e, Terminated | Interrupted):
                self.events.write("crash", step=steps.last, error=repr(e)[:500])
            raise
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, as asked
            self.events.write("interrupted", step=steps.last, saved=False)
            log.warning("stopped at once by a second Ctrl-C: steps after the last save are lost")
            raise
        except BaseException as e:
            self.events.write("crash", step=steps.last, error=repr(e)[:500])
            # Anything else (a bad record in strict mode, an I/O error): keep the work done so
            # far if the state is intact (a step that failed mid-way donated it).
            intact = not any(x.is_deleted() for x in jax.tree.leaves(self.state))
            if intact and self.step != start:
                # A bad record's message says it all; anything else keeps its traceback.
                report = log.error if isinstance(e, BadRecordError) else log.exception
                report("training stopped at step %d; saving a checkpoint first", self.step)
                self.save(wait=True)
            raise
        finally:
            watchdog.stop()
            compiled.close()
            profiler.close()
            metrics_log.close()
        return last

    def _tiers(self) -> dict[str, int]:
        """Each checkpoint tier in use and its interval in steps."""
        ck = self.sections.checkpoint
        every = {tiers.PERSISTENT: ck.every_steps}
        if self.local_checkpoints is not None:
            every[tiers.LOCAL] = ck.local_every_steps
        return every

    def _check_for_errors(self) -> None:
        self.checkpoints.check_for_errors()
        if self.local_checkpoints is not None:
            self.local_checkpoints.check_for_errors()

    def close(self) -> None:
        try:
            self.checkpoints.close()
            if self.local_checkpoints is not None:
                self.local_checkpoints.close()
            # Stops Grain's reader threads and workers (they may be busy refusing records).
            close_iterator = getattr(self.iterator, "close", None)
            if close_iterator is not None:
                close_iterator()
        finally:
            self._lock.release()

    def _account(self, pending, window, metrics_log, peak) -> dict | None:
        """Book-keep one finished step: non-finite checks, throughput, logging."""
        tc = self.config.train
        step, metrics, batch_flops = pending
        values = {k: np.asarray(v).item() for k, v in jax.device_get(metrics).items()}
        window["tokens"] += values["tokens"]
        window["flops"] += batch_flops
        metrics_log.advance()
        if values["nonfinite_consecutive"] >= tc.max_consecutive_nonfinite:
            self.save(wait=True)
            raise NonFiniteError(
                f"{values['nonfinite_consecutive']} consecutive steps with a non-finite loss or "
                f"gradient (config.train.max_consecutive_nonfinite="
                f"{tc.max_consecutive_nonfinite}) up to step {step}; a checkpoint was saved. "
                "Lower the learning rate or check the data."
            )
        if step % self.sections.log.every_steps and step != tc.steps:
            return None
        elapsed = max(time.perf_counter() - window["start"], 1e-9)
        row = {
            "loss": values["loss"],
            "learning_rate": values["learning_rate"],
            "grad_norm": values["grad_norm"],
            "tokens_per_sec": window["tokens"] / elapsed,
            "mfu": window["flops"] / elapsed / (jax.device_count() * peak),
            "target_tokens": values["target_tokens"],
            "nonfinite_skipped": values["nonfinite_total"],
        }
        for key in [k for k in window if k.startswith("ckpt_blocked_s_")]:
            row[key] = window[key]
            window[key] = 0.0
        metrics_log.write(step, row)
        window.update(tokens=0.0, flops=0.0, start=time.perf_counter())
        return row


def run(config, workdir: str) -> dict:
    """Train as ``config`` says, in ``workdir``; returns the last logged metrics."""
    trainer = Trainer(config, workdir)
    try:
        return trainer.train()
    finally:
        trainer.close()
