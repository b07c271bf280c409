import pytest

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils import validation as v


@pytest.mark.parametrize("name", ["web", "a", "Web_App-1+=,.@", "x" * 128])
def test_good_profile_names(name):
    assert v.check_iam_name(name, "name", "instance profile") == name


@pytest.mark.parametrize("name,fragment", [
    ("", "non-empty"),
    ("x" * 129, "at most 128"),
    ("web app", "characters IAM does not allow"),
    ("web/app", "characters IAM does not allow"),
    ("wéb", "characters IAM does not allow"),
])
def test_bad_profile_names_name_the_parameter(name, fragment):
    with pytest.raises(KeylessError) as info:
        v.check_iam_name(name, "name", "instance profile")
    assert info.value.param == "name"
    assert info.value.message.startswith("name")
    assert fragment in info.value.message


def test_role_names_are_limited_to_64():
    v.check_iam_name("r" * 64, "role", "role")
    with pytest.raises(KeylessError, match="at most 64"):
        v.check_iam_name("r" * 65, "role", "role")


@pytest.mark.parametrize("path", [None, "/", "/app/", "/app/web/", "/a-b_c.d/"])
def test_good_paths(path):
    assert v.check_iam_path(path, "path") == path


@pytest.mark.parametrize("path", ["app", "/app", "app/", "/a b/", "//", "/a//b/", "/" + "x" * 511 + "/"])
def test_bad_paths(path):
    with pytest.raises(KeylessError) as info:
        v.check_iam_path(path, "path")
    assert info.value.param == "path"


def test_arn_checks():
    assert v.name_from_name_or_arn("arn:aws:iam::123456789012:role/team/web", "role", "role") == "web"
    assert v.name_from_name_or_arn("web", "role", "role") == "web"
    assert v.name_from_name_or_arn("/OurExamples/MyExampleRole", "role", "role") == "MyExampleRole"
    with pytest.raises(KeylessError, match="ARN of an IAM instance profile, not of an IAM role"):
        v.name_from_name_or_arn("arn:aws:iam::123456789012:instance-profile/web", "role", "role")
    with pytest.raises(KeylessError, match="not a valid IAM ARN"):
        v.name_from_name_or_arn("arn:aws:s3:::bucket", "role", "role")
    with pytest.raises(KeylessError, match="aws-cn partition"):
        v.check_arn("arn:aws-cn:iam::123456789012:role/web", "role", "role", partition="aws")


def test_tags():
    assert v.check_tags(None) is None
    assert v.check_tags({"team": "web", "n": 1, "empty": None}) == {"team": "web", "n": "1", "empty": ""}
    with pytest.raises(KeylessError, match="at most 50"):
        v.check_tags(dict(("k%d" % i, "v") for i in range(51)))
    with pytest.raises(KeylessError, match="reserved prefix"):
        v.check_tags({"aws:cloudformation:stack": "x"})
    with pytest.raises(KeylessError, match="1 to 128"):
        v.check_tags({"k" * 129: "x"})
    with pytest.raises(KeylessError, match="longer than 256"):
        v.check_tags({"k": "v" * 257})
    with pytest.raises(KeylessError, match="characters IAM does not allow") as info:
        v.check_tags({"k": "semi;colon"}, "tags")
    assert info.value.param == "tags"


def test_instance_ids():
    assert v.check_instance_ids(["i-0123456789abcdef0", "i-12345678", "i-12345678"]) == [
        "i-0123456789abcdef0", "i-12345678"]
    with pytest.raises(KeylessError, match="instance_ids: 'web-1' is not an EC2 instance id"):
        v.check_instance_ids(["web-1"])
