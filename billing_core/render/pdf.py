"""PDF documents through WeasyPrint, fetching nothing but files under templates/.

The PDF carries no time of rendering: its dates are the document's own (from the page's
`dcterms.created` meta), and its file identifier is a hash of its content, so the same
document always renders to the same bytes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from billing_core.render.html import TEMPLATES_DIR


class BlockedFetch(FatalURLFetchingError):
    """A render tried to fetch something outside the templates folder."""


class TemplatesOnlyFetcher(URLFetcher):
    """Allows file: URLs under one folder; anything else (network, data:, other files)
    stops the render."""

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",))
        self.root = root.resolve()

    def fetch(self, url: str, headers: dict | None = None) -> Any:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise BlockedFetch(f"blocked fetch of {url!r}: only files under {self.root}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise BlockedFetch(f"blocked fetch of {url!r}: not a file under {self.root}")
        return super().fetch(path.as_uri(), headers)


class PdfRenderer:
    """Reuses one FontConfiguration and one parsed stylesheet for every invoice."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self.templates_dir = templates_dir.resolve()
        self.fetcher = TemplatesOnlyFetcher(self.templates_dir)
        self.font_config = FontConfiguration()
        css_path = self.templates_dir / "invoice.css"
        self.stylesheet = CSS(filename=str(css_path), base_url=str(self.templates_dir) + "/",
                              url_fetcher=self.fetcher, font_config=self.font_config)

    def render(self, html: str, einvoice_xml: bytes | None = None,
               issued: date | None = None) -> bytes:
        """PDF bytes for an HTML page rendered with inline_css=False. With `einvoice_xml`
        the PDF is PDF/A-3b carrying it as factur-x.xml (relationship Data), dated by the
        document's issue date so that it renders to the same bytes every time."""
        document = HTML(string=html, base_url=str(self.templates_dir) + "/",
                        url_fetcher=self.fetcher)
        if einvoice_xml is None:
            return document.write_pdf(stylesheets=[self.stylesheet],
                                      font_config=self.font_config, uncompressed_pdf=False)
        when = datetime.combine(issued or date(1970, 1, 1), time(), tzinfo=UTC)
        attachment = Attachment(string=einvoice_xml, name="factur-x.xml",
                                description="Factur-X (EN 16931) invoice data",
                                relationship="Data", created=when, modified=when,
                                url_fetcher=self.fetcher)
        return document.write_pdf(stylesheets=[self.stylesheet], font_config=self.font_config,
                                  uncompressed_pdf=False, pdf_variant="pdf/a-3b",
                                  attachments=[attachment],
                                  xmp_metadata=[(self.templates_dir / "einvoice" /
                                                 "factur-x-xmp.xml").as_uri()])
