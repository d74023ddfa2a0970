"""Print scikit-image regionprops values for the shapes in sieve-core's descriptor tests.

Run: python3 -m pip install scikit-image && python3 scripts/regionprops_reference.py
The Rust test `moments_match_scikit_image` in crates/sieve-core/src/regions/describe.rs
contains the numbers this printed with scikit-image 0.26.0 and numpy 2.4.6. Each shape is a
grid of '#' (region) and '.' (background), written the same way in the Rust test. Each line
is (name, area, centroid column, centroid row, axis_major_length, axis_minor_length,
orientation).
"""

import numpy as np
import skimage
from skimage.measure import label, regionprops

SHAPES = {
    "rectangle": [
        "......",
        ".###..",
        ".###..",
        "......",
    ],
    "l_shape": [
        "#...",
        "#...",
        "#...",
        "###.",
    ],
    "backslash": [
        "#...",
        ".#..",
        "..#.",
        "...#",
    ],
    "slash": [
        "...#",
        "..#.",
        ".#..",
        "#...",
    ],
    "square": [
        "##",
        "##",
    ],
    "blob": [
        "..##....",
        ".####...",
        "######..",
        ".#######",
        "...####.",
    ],
}


def main():
    print(f"# scikit-image {skimage.__version__}, numpy {np.__version__}")
    for name, rows in SHAPES.items():
        grid = np.array([[c == "#" for c in row] for row in rows])
        (region,) = regionprops(label(grid, connectivity=2))
        row, col = region.centroid
        print(
            f'("{name}", {region.area:.0f}.0, {float(col)!r}, {float(row)!r}, '
            f"{region.axis_major_length!r}, {region.axis_minor_length!r}, "
            f"{region.orientation!r}),"
        )


if __name__ == "__main__":
    main()
