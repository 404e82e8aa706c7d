"""The Canvas URLs of an import, as pages and `import.stuck` show them."""

from __future__ import annotations

from consumer.core.links import canvas_base, import_links


def test_links_point_at_the_sis_import_page_and_the_api_url() -> None:
    links = import_links("https://canvas.example.edu", "1", 31048324)
    assert links.ui == "https://canvas.example.edu/accounts/1/sis_import"
    assert links.api == "https://canvas.example.edu/api/v1/accounts/1/sis_imports/31048324"


def test_the_base_keeps_a_path_and_a_port_without_a_trailing_slash() -> None:
    assert canvas_base("http://127.0.0.1:8080/canvas/") == "http://127.0.0.1:8080/canvas"


def test_the_base_never_shows_credentials_a_query_or_a_fragment() -> None:
    shown = canvas_base("https://user:secret@canvas.example.edu/?access_token=abc#x")
    assert shown == "https://canvas.example.edu"


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert canvas_base("http://[::1]:9000") == "http://[::1]:9000"
