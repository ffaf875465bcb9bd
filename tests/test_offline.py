"""The crawler contacts no host but the sites it evaluates: no Public Suffix List download."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

# Imports the project settings the way `scrapy crawl` does, then Scrapy's cookies middleware,
# and asks it whether a cookie domain is a public suffix with an empty tldextract cache, while
# an audit hook records every name lookup and connection the process attempts.
PROBE = r"""
import json, socket, sys
events = []
def hook(event, args):
    if event in ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname"):
        events.append([event, repr(args[:2])])
sys.addaudithook(hook)
from scrapy.utils.project import get_project_settings
get_project_settings()
from scrapy.downloadermiddlewares import cookies
answers = [cookies._is_public_domain(d) for d in ("gov.cn", "www.zj.gov.cn", "com.cn", "beijing.gov.cn")]
print(json.dumps({"events": events, "answers": answers}))
"""


def test_cookie_domains_use_the_bundled_suffix_list(tmp_path):
    env = {"SCRAPY_SETTINGS_MODULE": "crawler.settings", "PATH": "/usr/bin:/bin",
           "TLDEXTRACT_CACHE": str(tmp_path / "tldextract"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["events"] == []
    # gov.cn and com.cn are public suffixes; a province's domain is not.
    assert out["answers"] == [True, False, True, False]
