from spiders.base import TargetSpider


class CityPortalsSpider(TargetSpider):
    """The 32 key cities (27 provincial capitals + 大连, 青岛, 宁波, 厦门, 深圳)."""

    name = "city_portals"
    level = "city"
