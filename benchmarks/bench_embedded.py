"""Speed of the embedded model against vit_b, measured in the same process.

Prints, for one 1024×1024 input: the embedded encoder's time, our vit_b encoder's time and the
ratio (target: ≤ 0.25 s and ≥ 40× faster), and the median time from one click to the
full-resolution masks with the embedded model: the first answer, from the image's embedding
(target: ≤ 25 ms), and the answer averaged over the default prompt views (see
:mod:`napari_segany.inference.prompt_views`), for a click and for a box.

Usage: python benchmarks/bench_embedded.py [--repeats 5] [--clicks 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _timing import median_seconds
from napari_segany import Predictor, build_model, load_model
from napari_segany.synthetic import generate_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=40)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    embedded = Predictor(load_model(device="cpu"))
    vit_b = Predictor(build_model("vit_b"))
    x = torch.rand(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0)) * 255
    t_embedded = median_seconds(lambda: embedded.encode(x), args.repeats)
    t_vit_b = median_seconds(lambda: vit_b.encode(x), max(1, args.repeats // 3))

    scene = generate_scene((1024, 1024), seed=11, held_out=True)
    embedded.set_image(scene.raw)
    objects = scene.objects[: args.clicks]
    embedded.instance_labels()  # computed once per image, at the first click
    times = {"click": [], "click_views": [], "box_views": []}
    for obj in objects:
        for name, prompt in (
            ("click", dict(points=[obj.centroid], prompt_views=1)),
            ("click_views", dict(points=[obj.centroid])),
            ("box_views", dict(box=[*obj.bbox[:2], obj.bbox[2] - 1, obj.bbox[3] - 1])),
        ):
            start = time.perf_counter()
            embedded.predict(**prompt)
            times[name].append(time.perf_counter() - start)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}

    print("\none 1024x1024 input, image encoder (median):")
    print(f"  embedded segany_cells  {t_embedded:7.3f} s   (target <= 0.25 s)")
    print(
        f"  our vit_b, fp32        {t_vit_b:7.3f} s   -> embedded is {t_vit_b / t_embedded:.0f}x "
        "faster (target >= 40x)"
    )
    print(
        f"\nprompt -> full-resolution masks, median over {len(objects)} objects of a held-out "
        "scene:"
    )
    print(f"  one click, first answer (1 view)      {ms['click']:6.1f} ms   (target <= 25 ms)")
    views = embedded.prompt_views
    print(f"  one click, {views} prompt views             {ms['click_views']:6.1f} ms")
    print(f"  one box, {views} prompt views               {ms['box_views']:6.1f} ms")


if __name__ == "__main__":
    main()
