"""Credentials in repository URLs are split off where URLs come in (assethub.gitcred)."""

from __future__ import annotations

from assethub.gitcred import GitSecret, credential_host, has_credentials, redact_url, split_credentials


def test_a_url_with_userinfo_splits_into_the_clean_url_and_the_credential() -> None:
    assert split_credentials("https://user:s3cret@Git.Example.org/a/b.git") == (
        "https://Git.Example.org/a/b.git", GitSecret("git.example.org", "user", "s3cret"))
    assert split_credentials("https://tok%40en@git.example.org:8443/x?y=1") == (
        "https://git.example.org:8443/x?y=1", GitSecret("git.example.org:8443", "tok@en", ""))
    assert split_credentials("http://u:p@127.0.0.1:80/r")[1] == GitSecret("127.0.0.1", "u", "p")


def test_urls_without_a_credential_are_left_as_they_are() -> None:
    for url in ("https://git.example.org/a.git", "/srv/code.git", "git@github.com:a/b.git",
                "ssh://git@host/a.git", "file:///srv/a.git", ""):
        assert split_credentials(url) == (url, None) and not has_credentials(url)
    assert credential_host("https://git.example.org:443/a") == "git.example.org"
    assert credential_host("/srv/code.git") == ""


def test_the_secret_is_not_in_repr_and_redaction_hides_userinfo() -> None:
    assert "s3cret" not in repr(GitSecret("h", "u", "s3cret")) and "u'" not in repr(GitSecret("h", "u"))
    assert redact_url("https://user:s3cret@git.example.org/a.git") == "https://***@git.example.org/a.git"
    assert redact_url("git@github.com:a/b.git") == "git@github.com:a/b.git"


def test_retrains_get_no_url_and_no_user_in_their_parameters() -> None:
    from deployments.triggers import retrain_parameters

    # the server registers the retrain as the follow's owner, with the follow's clean URL
    assert retrain_parameters(3) == {"follow_id": 3}
