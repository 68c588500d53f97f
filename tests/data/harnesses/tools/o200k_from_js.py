"""Write tiktoken's o200k_base file from npm js-tiktoken's ranks, so Inspect's mockllm runs offline.

js-tiktoken ships each rank block as ``<tag> <first rank> <token> <token> ...`` lines; tiktoken wants
``<base64 token> <rank>`` lines in a cache file named after the sha1 of its download URL. tiktoken
checks the file's sha256 when it loads it; so do we, before writing.
"""

import hashlib
import json
import sys
from pathlib import Path

URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


def main(js_file: str, cache_dir: str) -> None:
    text = Path(js_file).read_text(encoding="utf-8")
    ranks = json.loads(text[text.index("{") : text.rindex("}") + 1])["bpe_ranks"]
    by_rank: dict[int, str] = {}
    for line in filter(None, ranks.split("\n")):
        _, first, *tokens = line.split(" ")
        for offset, token in enumerate(tokens):
            by_rank[int(first) + offset] = token
    body = "".join(f"{by_rank[r]} {r}\n" for r in sorted(by_rank)).encode()
    if hashlib.sha256(body).hexdigest() != SHA256:
        sys.exit("o200k_base rebuilt from js-tiktoken does not match tiktoken's sha256")
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    (Path(cache_dir) / hashlib.sha1(URL.encode()).hexdigest()).write_bytes(body)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
