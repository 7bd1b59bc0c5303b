"""Rebuild recognizer/data/photos/ from the Debian package tuxpaint-stamps-default.

    python scripts/build_photos.py [--deb FILE.deb] [--out recognizer/data/photos]

The committed photos and their SOURCES.csv are this script's output. It needs
Debian's apt-get and dpkg (or a .deb given with --deb), and Pillow. Each stamp
is a PNG cut-out with transparency: it is composited onto white, converted to
RGB and saved as JPEG quality 90 at its own size (none is larger than 480 px).
The same package version and the same Pillow/libjpeg give the same bytes.

Only stamps that the package's copyright file covers with no extra terms are
chosen: the upstream change log names other licenses for a few photos (the
Kerala flowers, pelican, herons, helmeted guineafowl, woodlouse, brown slug,
fire engine, the Wikipedia sports and instrument photos, the Christmas dishes,
the light bulb, the inukshuk), and none of those is used.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGE = "tuxpaint-stamps-default"
VERSION = "2022.06.04-1"
STAMPS = Path("usr/share/tuxpaint/stamps")
LICENSE = "GPL-2.0-or-later"
COPYRIGHT = "Copyright 2002-2022 Bill Kendrick (Tux Paint)"  # the package's copyright file
QUALITY = 90
OUT = Path(__file__).resolve().parent.parent / "recognizer" / "data" / "photos"
COLUMNS = ("file", "role", "domain", "description", "source", "license", "attribution")

# role, domain/name, description, stamp under usr/share/tuxpaint/stamps/
PHOTOS = """
parity  animal/bear               bear                                      animals/mammals/bears/bear.png
parity  animal/giraffe            giraffe                                   animals/mammals/giraffe.png
parity  animal/frog               frog                                      animals/amphibians/frog.png
parity  bird/crow                 crow                                      animals/birds/crow.png
parity  bird/duck                 mallard duck                              animals/birds/duck.png
parity  bird/magpie               magpie                                    animals/birds/magpie.png
parity  plant/birch               birch tree in winter (greyscale photo)    plants/trees/birch.png
parity  plant/iris                iris                                      plants/flowers/iris.png
parity  plant/marigold            marigold                                  plants/flowers/marigold.png
parity  other/kettle              electric kettle                           household/kettle.png
parity  other/key                 key                                       household/key.png
parity  other/bus                 green city bus                            vehicles/masstransit/green_korean_bus.png
golden  animal/fox                red fox                                   animals/mammals/dogs/fox.png
golden  animal/zebra              zebra                                     animals/mammals/equines/zebra.png
golden  animal/tiger              tiger                                     animals/mammals/cats/tiger.png
golden  animal/horse              horse                                     animals/mammals/equines/horse.png
golden  animal/sea-lion           sea lion                                  animals/mammals/aquatic/sea_lion.png
golden  animal/dromedary          dromedary camel                           animals/mammals/camel/dromedary.png
golden  animal/mantis             praying mantis                            animals/insects/mantis.png
golden  animal/elephant           elephant                                  animals/mammals/elephant.png
golden  animal/koala              koala                                     animals/marsupials/koala.png
golden  animal/gorilla            gorilla                                   animals/mammals/apes/gorilla.png
golden  animal/otter              otter                                     animals/mammals/aquatic/otter.png
golden  animal/pig                pig                                       animals/mammals/pig.png
golden  animal/hippopotamus       hippopotamus                              animals/mammals/hippopotamus.png
golden  bird/turkey               turkey                                    animals/birds/turkey.png
golden  bird/flamingo             flamingo                                  animals/birds/pink_flamingo.png
golden  bird/gander               domestic goose (gander)                   animals/birds/gander.png
golden  bird/snowy-owl            snowy owl                                 animals/birds/owl.png
golden  bird/toucan               toucan                                    animals/birds/tucan.png
golden  bird/hen                  brown hen                                 animals/birds/hen.png
golden  bird/rooster              rooster                                   animals/birds/rooster.png
golden  bird/king-penguin         king penguin                              animals/birds/penguin.png
golden  bird/ostrich              ostrich                                   animals/birds/ostrich.png
golden  bird/peacock              peacock                                   animals/birds/peacock.png
golden  bird/pigeon               pigeon                                    animals/birds/pigeon.png
golden  bird/vulture              vulture                                   animals/birds/vulture.png
golden  plant/rose                rose                                      plants/flowers/rose.png
golden  plant/cep                 cep (porcini) mushroom                    plants/mushrooms/cep.png
golden  plant/yellow-flower       yellow daisy-like flower                  plants/flowers/yellow-flower.png
golden  plant/red-gazania         red gazania                               plants/flowers/red-gazania.png
golden  plant/lavender            common lavender plant                     plants/lavender.png
golden  plant/palm-tree           palm tree                                 plants/trees/liberia-palm.png
golden  plant/holm-oak            holm oak tree                             plants/trees/holm_oak.png
golden  plant/thyme               thyme plant                               plants/thyme.png
golden  plant/eggplant            eggplant (aubergine) plant with fruit     plants/eggplant.png
golden  plant/whitestar-petunia   white star petunia                        plants/flowers/whitestar-petunia.png
golden  plant/rambutan            rambutan fruit cluster                    plants/trees/rambutan.png
golden  plant/lantana             lantana flowers                           plants/flowers/flower7.png
golden  other/teapot              brown teapot                              household/dishes/teapot.png
golden  other/hammer              claw hammer                               household/tools/hammer.png
golden  other/toilet              toilet                                    household/toilet.png
golden  other/mailbox             US postal mailbox                         town/usps_mailbox.png
golden  other/sedan               blue sedan car                            vehicles/auto/sedan.png
golden  other/pickup-truck        pickup truck                              vehicles/auto/truck.png
golden  other/hot-air-balloon     hot-air balloon                           vehicles/flight/balloon360.png
golden  other/camera              35 mm film camera                         hobbies/camera_35mm.png
golden  other/binoculars          binoculars                                hobbies/binoculars.png
golden  other/rubber-duck         yellow rubber duck (bath toy)             household/rubberduck.png
golden  other/wheelie-bin         green wheelie bin                         household/wheelie_bin.png
golden  other/tricycle            pink child's tricycle                     vehicles/cycle/pink_tricycle.png
"""


def selection() -> list[dict[str, str]]:
    """The rows of PHOTOS: columns are separated by two or more spaces, descriptions have single ones."""
    rows = []
    for line in PHOTOS.strip().splitlines():
        role, name, *rest = line.split(None, 2)
        description, stamp = rest[0].rsplit(None, 1)
        rows.append({"role": role, "name": name, "description": description.strip(), "stamp": stamp})
    return rows


def unpack(deb: Path | None, work: Path) -> Path:
    """The package unpacked under work: downloaded with apt-get unless a .deb is given."""
    if deb is None:
        subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=work, check=True)
        deb = work / f"{PACKAGE}_{VERSION}_all.deb"
    root = work / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def on_white(stamp: Path) -> bytes:
    """A stamp composited onto white, as JPEG bytes."""
    with Image.open(stamp) as image:
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    out = io.BytesIO()
    flat.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def build(root: Path, out: Path) -> list[dict[str, str]]:
    """Write every photo and return the SOURCES.csv rows."""
    records = []
    for role in {row["role"] for row in selection()}:
        shutil.rmtree(out / role, ignore_errors=True)  # a photo dropped from the list must not stay behind
    for row in selection():
        file = Path(row["role"]) / f"{row['name']}.jpg"
        target = out / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(on_white(root / STAMPS / row["stamp"]))
        domain = row["name"].split("/")[0]
        source = f"{PACKAGE} {VERSION}: {STAMPS / row['stamp']}"
        values = (file.as_posix(), row["role"], domain, row["description"], source, LICENSE, COPYRIGHT)
        records.append(dict(zip(COLUMNS, values)))
    return records


def write_sources(records: list[dict[str, str]], out: Path) -> None:
    with open(out / "SOURCES.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE}_{VERSION}_all.deb")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        root = unpack(args.deb.resolve() if args.deb else None, Path(work))
        records = build(root, args.out)
    write_sources(records, args.out)
    size = sum((args.out / r["file"]).stat().st_size for r in records)
    print(f"{len(records)} photos, {size / 1e6:.2f} MB, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
