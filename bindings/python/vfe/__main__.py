"""python3 -m vfe: the vfe program's run, and plots of results.

    python3 -m vfe run model.json [-o result.json] [--summary]
    python3 -m vfe plot result.json -o plot.png
"""

import argparse
import json
import sys

import vfe


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m vfe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a model file and write its result document")
    run.add_argument("model")
    run.add_argument("-o", "--output", help="write the result here (default: standard output)")
    run.add_argument("--summary", action="store_true",
                     help="print F and the posterior means instead of the JSON")
    plot = commands.add_parser("plot", help="draw a result file's trace and marginals")
    plot.add_argument("result")
    plot.add_argument("-o", "--output", required=True, help="the image to write (.png, .svg)")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            graph = vfe.load(args.model)
            result = vfe.infer(graph)
            if args.summary:
                print(result.message)
                print(f"F = {result.free_energy[-1]:.10g}")
                for name, q in vfe.result_dict(graph, result)["posteriors"].items():
                    if isinstance(q, dict) and "mean" in q:
                        print(f"{name}: mean {q['mean']}")
            else:
                text = graph.result_json(result)
                if args.output:
                    with open(args.output, "w") as out:
                        out.write(text + "\n")
                else:
                    print(text)
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        else:
            from vfe import plot as plots

            with open(args.result) as f:
                document = json.load(f)
            if document.get("format") != "vfe-result/1":
                raise vfe.Error(f"{args.result}: expected a vfe-result/1 document, found "
                                f"format {document.get('format')!r}")
            plots.summary(document, args.output)
    except (vfe.Error, OSError, ValueError, KeyError) as e:
        print(f"vfe: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
