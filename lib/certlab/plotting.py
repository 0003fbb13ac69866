"""One figure style for the book: legible at the column width, sharp on high-density screens.

The book's text column is about 750 CSS pixels wide. Figures are drawn at most
:data:`COLUMN_WIDTH_IN` inches wide with fonts that stay readable after the browser fits
them to the column, and stored at :data:`DPI` dots per inch (twice the CSS pixel density,
"retina" quality).
"""

from __future__ import annotations

__all__ = ["COLUMN_WIDTH_IN", "DPI", "use_book_style"]

#: Width of the text column in inches at the figure's nominal 100 px / inch.
COLUMN_WIDTH_IN = 7.5
#: Dots per inch of the stored PNGs.
DPI = 200


def use_book_style() -> None:
    """Set matplotlib's defaults for the book's figures (call once per chapter).

    Font sizes are chosen so that a figure of :data:`COLUMN_WIDTH_IN` inches keeps 9-11 pt
    text when it is shown at the column width; legends get an opaque frame so that they never
    hide a series silently.
    """
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "figure.figsize": (COLUMN_WIDTH_IN * 0.8, COLUMN_WIDTH_IN * 0.5),
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 8.5,
        "legend.framealpha": 0.9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
