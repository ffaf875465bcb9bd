"""Nightly jobs are configured the way a single long-lived scheduler needs them."""

import scheduler


def test_nightly_jobs():
    jobs = {job.id: job for job in scheduler.build_scheduler().get_jobs()}
    assert set(jobs) == {"nightly-province_portals", "nightly-city_portals"}
    for spider, hour in scheduler.NIGHTLY:
        job = jobs[f"nightly-{spider}"]
        assert job.func is scheduler.run_spider and job.args == (spider,)
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 3600
        assert str(job.trigger.timezone) == "Asia/Shanghai"
        assert str(job.trigger.fields[5]) == str(hour)  # the hour field of the cron trigger
