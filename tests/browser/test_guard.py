"""The harness itself: what the Guard counts is real, so "zero external requests, zero errors" means something."""

from __future__ import annotations

PAGE = """<img src="https://cdn.example.com/logo.png"><link rel="stylesheet" href="http://fonts.example.org/a.css">
<script>console.error("broken on purpose")</script><script>throw new Error("thrown on purpose")</script>"""


def test_external_requests_are_aborted_and_counted_and_errors_kept(guarded) -> None:
    page, guard = guarded
    page.set_content(PAGE)
    page.wait_for_function("() => document.readyState === 'complete'")
    failed = page.evaluate("() => fetch('https://api.example.net/x').then(() => 'fetched', () => 'failed')")
    assert failed == "failed"
    assert sorted(guard.blocked) == ["http://fonts.example.org/a.css", "https://api.example.net/x",
                                     "https://cdn.example.com/logo.png"]
    assert "console: broken on purpose" in guard.errors
    assert any(e.startswith("pageerror:") and "thrown on purpose" in e for e in guard.errors)


def test_the_lab_api_takes_deletes_with_the_xsrf_cookie(lab) -> None:
    kernel = lab.api("POST", "/api/kernels", {"name": "python3"})
    assert kernel["id"] in {k["id"] for k in lab.api("GET", "/api/kernels")}
    lab.shutdown_kernels()
    assert lab.api("GET", "/api/kernels") == []
