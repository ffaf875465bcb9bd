from spiders.base import TargetSpider


class ProvincePortalsSpider(TargetSpider):
    """The 32 provincial-level governments (31 provinces + 新疆生产建设兵团)."""

    name = "province_portals"
    level = "province"
