"""lm-evaluation-harness interop (lm-eval 0.4.13), imported only when used.

- :func:`register` puts our metrics and aggregations in lm-eval's registries: ``accuracy`` and
  ``anls`` (per-sample scores computed by our scorers, aggregated with lm-eval's ``mean``, so
  lm-eval's closed-form stderr applies) and each task's corpus metrics (e.g. ``rmse``:
  aggregation ``harness_rmse``, lower is better). Idempotent.
- :class:`HarnessLM` is an lm-eval ``LM`` (``MULTIMODAL = True``, registered as
  ``pixel-harness``) that answers ``generate_until`` requests with a harness policy, building
  the same messages and per-sample seed as a ``notool`` episode; log-likelihoods are refused.
- :func:`export_tasks` writes an lm-eval task folder for the single-turn ``notool`` mode of the
  image tasks: one YAML per task, ``utils.py`` (``custom_dataset`` / ``doc_to_text`` /
  ``doc_to_image`` / ``process_results`` delegating to this module) and ``data/<task>.jsonl``
  (the samples, media paths absolute). Video tasks (MVBench) cannot go through lm-eval: it has no
  video input. The multi-turn ``vcot`` mode cannot either: lm-eval is single-call by design.

Run it from Python (``lm-eval run`` cannot find a model defined outside lm-eval)::

    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from harness.interop.lm_eval_bridge import HarnessLM
    simple_evaluate(model=HarnessLM(model="scripted:random"), tasks=["pixel_harness_vstar"],
                    task_manager=TaskManager(include_path="DIR", include_defaults=False))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_aggregation, register_metric, register_model

from harness.data import load_samples
from harness.data.source import DataSource
from harness.loop.limits import Limits
from harness.loop.policy import DEFAULT_MAX_NEW_TOKENS, DEFAULT_STOP, Policy, Request, Sampling
from harness.loop.protocol import SYSTEM_PROMPT, user_text
from harness.loop.rollout import sample_seed
from harness.plugins import Harness, make_plugin_manager
from harness.records import Sample, SampleScore
from harness.scoring.modes import sample_score
from harness.task import TaskSpec
from harness.tools import shown_input

TASK_PREFIX = "pixel_harness_"
UTILS = '''"""lm-eval hooks of the pixel-harness tasks (written by `harness export-lm-eval`)."""

from harness.interop.lm_eval_bridge import doc_to_image, doc_to_target, doc_to_text, load_docs, process_results, register

register()
__all__ = ["doc_to_image", "doc_to_target", "doc_to_text", "load_docs", "process_results"]
'''


@cache
def _harness() -> Harness:
    return Harness(make_plugin_manager())


def passthrough(items: Any) -> Any:
    """The metric function of scores that ``process_results`` already computed."""
    return items


def _corpus_aggregation(name: str) -> Any:
    def aggregate(items: Sequence[Mapping[str, Any]]) -> float:
        scores = [SampleScore.from_dict(dict(item)) for item in items]
        spec = _harness().task(scores[0].task)
        metric = next(m for m in spec.corpus_metrics if m.name == name)
        return metric.compute(scores)

    aggregate.__name__ = f"harness_{name}"
    return aggregate


_AGGREGATIONS: dict[str, Any] = {}


def register() -> None:
    """Register our metrics and aggregations with lm-eval (safe to call again)."""
    import lm_eval.api.metrics  # noqa: F401 (fills lm-eval's own registries, "mean" among them)

    for spec in _harness().tasks.values():
        register_metric(metric=spec.metric, higher_is_better=spec.higher_is_better, aggregation="mean")(
            passthrough
        )
        for m in spec.corpus_metrics:
            if m.name not in _AGGREGATIONS:
                _AGGREGATIONS[m.name] = register_aggregation(f"harness_{m.name}")(_corpus_aggregation(m.name))
            register_metric(
                metric=m.name, higher_is_better=m.higher_is_better, aggregation=f"harness_{m.name}"
            )(passthrough)


# --------------------------------------------------------------------------- task hooks


def doc_sample(doc: Mapping[str, Any]) -> Sample:
    return Sample.from_dict(json.loads(doc["sample"]))


def load_docs(data_file: str, **_: Any) -> dict[str, Any]:
    """``custom_dataset``: the exported samples as a ``test`` split (one JSON string per doc)."""
    import datasets

    path = Path(data_file)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def doc_to_text(doc: Mapping[str, Any]) -> str:
    """The ``notool`` user text: the task's question + the step-by-step instruction."""
    sample = doc_sample(doc)
    return user_text(_harness().task(sample.task).question(sample), "notool")


def doc_to_image(doc: Mapping[str, Any]) -> list[Any]:
    """The sample's images, resized into the pixel budget exactly as an episode shows them."""
    from harness.data import open_media

    sample = doc_sample(doc)
    budget = {k: int(v) for k, v in doc.items() if k.endswith("_pixels")}  # folders exported before
    limits = Limits(**budget)  # the source bounds existed lack them: Limits' defaults then
    return [shown_input(img, limits) for img in open_media(sample)]


def doc_to_target(doc: Mapping[str, Any]) -> str:
    sample = doc_sample(doc)
    return " | ".join(sample.golds)


def process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Our task's own scorer on the reply; corpus metrics get the sample's score record."""
    sample = doc_sample(doc)
    spec = _harness().task(sample.task)
    reply = results[0] if results else None
    scored = spec.score(reply, sample)
    out: dict[str, Any] = {spec.metric: scored.score}
    if spec.corpus_metrics:
        record = sample_score(spec, sample, scored).to_dict()
        out.update({m.name: record for m in spec.corpus_metrics})
    return out


# --------------------------------------------------------------------------- the model


@register_model("pixel-harness")
class HarnessLM(LM):  # type: ignore[misc]
    """An lm-eval model that answers with a harness policy (``notool``: one turn, no tools).

    Give a built ``policy`` or a ``model`` spec (``scripted:random``, ...) with its
    ``model_args``. Each request carries the seed ``harness eval`` would use for that sample
    (:func:`harness.loop.rollout.sample_seed` of ``seed`` and the sample key), so a seeded policy
    answers as it does in ``harness eval --prompt notool``.
    """

    MULTIMODAL = True

    def __init__(
        self,
        policy: Policy | None = None,
        model: str | None = None,
        seed: int = 0,
        batch_size: int = 8,
        **model_args: Any,
    ) -> None:
        super().__init__()
        if policy is None:
            if model is None:
                raise ValueError("HarnessLM needs a policy or a model spec such as scripted:random")
            from harness.run.evaluate import EvalConfig, build_policy

            args = {k: str(v) for k, v in model_args.items()}
            policy = build_policy(
                _harness(), EvalConfig(tasks="all", model=model, model_args=args, seed=seed)
            )
        self.policy, self.seed, self.batch_size = policy, int(seed), max(1, int(batch_size))

    def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
        built = [self._request(inst) for inst in requests]
        out: list[str] = []
        for start in range(0, len(built), self.batch_size):
            batch = built[start : start + self.batch_size]
            replies = self.policy.generate(batch)
            out.extend(r.text for r in replies)
        return out

    def _request(self, inst: Any) -> Request:
        context, gen_kwargs, *rest = inst.args
        visual = list(rest[0].get("visual") or []) if rest and isinstance(rest[0], dict) else []
        doc = inst.doc or {}
        sample = doc_sample(doc) if "sample" in doc else Sample("lm_eval", str(inst.doc_id), context, "", ())
        seed = sample_seed(self.seed, sample.key)
        sampling = Sampling(
            temperature=float(gen_kwargs.get("temperature", 0.0)),
            top_p=float(gen_kwargs.get("top_p", 1.0)),
            max_new_tokens=int(gen_kwargs.get("max_gen_toks", DEFAULT_MAX_NEW_TOKENS)),
            stop=tuple(gen_kwargs.get("until") or DEFAULT_STOP),
            seed=seed,
        )
        parts: list[dict[str, Any]] = [{"type": "image", "image": img} for img in visual]
        parts.append({"type": "text", "text": context})
        messages = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": parts},
        ]
        return Request(messages=messages, sampling=sampling, sample=sample, turn=0, seed=seed)

    def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise NotImplementedError("pixel-harness policies only generate text (generate_until tasks)")

    def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError("pixel-harness policies only generate text (generate_until tasks)")


# --------------------------------------------------------------------------- export


def _yaml(spec: TaskSpec, data_file: Path, limits: Limits) -> str:
    metrics = [(spec.metric, "mean", spec.higher_is_better)] + [
        (m.name, f"harness_{m.name}", m.higher_is_better) for m in spec.corpus_metrics
    ]
    metric_lines = "".join(
        f"  - metric: {name}\n    aggregation: {agg}\n    higher_is_better: {str(hib).lower()}\n"
        for name, agg, hib in metrics
    )
    stops = ", ".join(json.dumps(s) for s in DEFAULT_STOP)
    return (
        f"# pixel-harness task {spec.name} v{spec.version}, prompt mode notool (written by harness export-lm-eval)\n"
        f"task: {TASK_PREFIX}{spec.name}\n"
        "custom_dataset: !function utils.load_docs\n"
        f"dataset_kwargs:\n  data_file: {json.dumps(str(data_file))}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "doc_to_text: !function utils.doc_to_text\n"
        "doc_to_image: !function utils.doc_to_image\n"
        "doc_to_target: !function utils.doc_to_target\n"
        "process_results: !function utils.process_results\n"
        "generation_kwargs:\n"
        f"  until: [{stops}]\n  do_sample: false\n  temperature: 0.0\n  max_gen_toks: {limits.max_new_tokens}\n"
        f"metric_list:\n{metric_lines}"
        f"metadata:\n  version: {spec.version}\n  prompt_mode: notool\n"
    )


def export_tasks(
    directory: Path,
    specs: Sequence[TaskSpec],
    data: DataSource | str = "synthetic",
    limit: int | None = None,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
) -> list[str]:
    """Write the lm-eval task folder for ``specs`` (image tasks only); return the task names."""
    video = [s.name for s in specs if s.media_kind != "image"]
    if video:
        raise ValueError(
            f"{', '.join(video)}: video task(s) cannot be exported: lm-eval has no video input; "
            "evaluate them with harness eval"
        )
    source = DataSource.of(data)  # parsed once, before any file is written
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    names = []
    for spec in specs:
        data_file = (directory / "data" / f"{spec.name}.jsonl").resolve()
        with data_file.open("w", encoding="utf-8") as fh:
            for sample in load_samples(spec, source, limit):
                row = sample.to_dict()
                row["root"] = str(Path(sample.root or ".").resolve())
                doc = {"key": sample.key, "sample": json.dumps(row), **_budget(limits)}
                fh.write(json.dumps(doc) + "\n")
        (directory / f"{TASK_PREFIX}{spec.name}.yaml").write_text(
            _yaml(spec, data_file, limits), encoding="utf-8"
        )
        names.append(f"{TASK_PREFIX}{spec.name}")
    (directory / "utils.py").write_text(UTILS, encoding="utf-8")
    return names


def _budget(limits: Limits) -> dict[str, int]:
    return {
        "min_pixels": limits.min_pixels,
        "max_pixels": limits.max_pixels,
        "source_min_pixels": limits.source_min_pixels,
        "source_max_pixels": limits.source_max_pixels,
    }
