"""Our JSON form of an entity (common/json.c, what `sysrepl export` and
`sysrepl get` print) as the record our Avro schemas shape it: what any Avro
reader decodes a sysrepl value to. Shared by tests/unit/codec_interop.py
(fastavro) and tests/integration/test_confluent_interop.sh (the Confluent
Python client)."""
import datetime


def ms(v):
    """A timestamp in milliseconds (ints as they are; ISO-8601 text and
    datetime objects, as Avro readers give timestamp-millis, converted)."""
    if v is None or isinstance(v, int):
        return v
    if isinstance(v, datetime.datetime):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (v - epoch) // datetime.timedelta(milliseconds=1)
    dt = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (dt - epoch) // datetime.timedelta(milliseconds=1)


RULE_GROUP_ORDER = ["license", "deprecation", "unlisted"]


def to_avro(kind, j):
    """Our JSON form (json.h) -> the record as our schema shapes it."""
    meta = {"origin": j.get("origin", ""), "version": j.get("version", 0),
            "changed_at": ms(j.get("changed_at", 0))}
    if kind == "assessment_type":
        ar = j.get("auto_rule") or {"kind": "none"}
        rec = {"name": j["name"], "description": j.get("description"),
               "color": j.get("color"), "severity_class": j["severity_class"],
               "emitted_severity": j.get("emitted_severity"),
               "auto_rule": {"kind": ar["kind"], "cvss_min": ar.get("cvss_min", 0.0),
                             "cvss_max": ar.get("cvss_max", 10.0),
                             "pvrs_categories": ar.get("pvrs_categories", [])},
               "default_expiry_days": j.get("default_expiry_days"),
               "inactive": j["inactive"], "built_in": j["built_in"]}
    elif kind == "vulnerability_assessment":
        pf = j.get("package_filter")
        rec = {"vulnerability_id": j["vulnerability_id"],
               "scope": {"kind": j["scope"]["kind"], "name": j["scope"].get("name")},
               "assessment_type": j["assessment_type"], "comment": j.get("comment"),
               "package_filter": None if pf is None else
               {"name": pf["name"], "version_range": pf.get("version_range")},
               "expires_at": ms(j.get("expires_at")), "automatic": j["automatic"],
               "assessed_by": j.get("assessed_by"), "assessed_at": ms(j.get("assessed_at", 0))}
    else:
        rec = {"name": j["name"], "description": j.get("description"),
               "feeds": j.get("feeds", []), "unassessed": j["unassessed"],
               "by_assessment_type": j.get("by_assessment_type", {}),
               "license_undetected": j["license_undetected"],
               "license_other": j["license_other"], "by_license": j.get("by_license", {}),
               "deprecated": j["deprecated"], "unlisted": j["unlisted"],
               "exceptions": [{"package": x["package"], "version_range": x.get("version_range"),
                               "rule_groups": sorted(x.get("rule_groups", []),
                                                     key=RULE_GROUP_ORDER.index),
                               "expires_at": ms(x.get("expires_at"))}
                              for x in j.get("exceptions", [])],
               "risk_profile": j.get("risk_profile")}
    rec.update(meta)
    return rec
