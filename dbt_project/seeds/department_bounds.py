"""Writes department_bounds.csv: each département's bounding box from its contour.

Usage: python department_bounds.py departements-avec-outre-mer.geojson > department_bounds.csv
The GeoJSON is gregoiredavid/france-geojson's (IGN Admin Express COG 2018, Licence Ouverte).
"""

import csv
import json
import sys


def points(coordinates):
    """Every [longitude, latitude] of a (Multi)Polygon's nested coordinate lists."""
    if isinstance(coordinates[0], int | float):
        yield coordinates
        return
    for part in coordinates:
        yield from points(part)


def main(path: str) -> None:
    features = json.load(open(path, encoding="utf-8"))["features"]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "department_code",
            "department_name",
            "min_latitude",
            "max_latitude",
            "min_longitude",
            "max_longitude",
        ]
    )
    for feature in sorted(features, key=lambda f: f["properties"]["code"]):
        longitudes, latitudes = zip(*(p[:2] for p in points(feature["geometry"]["coordinates"])), strict=True)
        writer.writerow(
            [
                feature["properties"]["code"],
                feature["properties"]["nom"],
                *(round(v, 4) for v in (min(latitudes), max(latitudes), min(longitudes), max(longitudes))),
            ]
        )


if __name__ == "__main__":
    main(sys.argv[1])
