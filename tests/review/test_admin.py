"""The admin: the audit log is visible to admins and read-only for everyone."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from review.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(reviewer):
    return AuditLog.objects.create(
        actor=reviewer, actor_username=reviewer.username, view="transcript", conversation_id=7
    )


def test_admin_sees_the_audit_log(client, admin, row):
    client.force_login(admin)
    response = client.get(reverse("admin:review_auditlog_changelist"))
    assert response.status_code == 200
    assert row.actor_username in response.content.decode()
    detail = client.get(reverse("admin:review_auditlog_change", args=[row.pk]))
    assert detail.status_code == 200


def test_admin_searches_the_audit_log_by_name_or_id(client, admin, row):
    client.force_login(admin)
    url = reverse("admin:review_auditlog_changelist")
    assert row.actor_username in client.get(url, {"q": row.actor_username}).content.decode()
    assert client.get(url, {"q": "7"}).context["cl"].result_count == 1
    assert client.get(url, {"q": "nobody-at-all"}).context["cl"].result_count == 0


def test_the_audit_log_cannot_be_added_changed_or_deleted(client, admin, row):
    client.force_login(admin)
    assert client.get(reverse("admin:review_auditlog_add")).status_code == 403
    client.post(
        reverse("admin:review_auditlog_change", args=[row.pk]),
        {"actor_username": "someone-else", "view": "transcript"},
    )
    delete = client.post(reverse("admin:review_auditlog_delete", args=[row.pk]), {"post": "yes"})
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.actor_username != "someone-else"


def test_reviewers_do_not_see_the_audit_log(client, reviewer, row):
    client.force_login(reviewer)
    assert client.get(reverse("admin:review_auditlog_changelist")).status_code == 403


def test_reviewers_group_grants_only_the_review_permission():
    group = Group.objects.get(name="Reviewers")
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert codenames == {("review", "review_replies")}


def test_nav_shows_review_link_to_reviewers_only(client, reviewer, user):
    client.force_login(reviewer)
    assert reverse("review:queue") in client.get(reverse("conversation_list")).content.decode()
    client.force_login(user)
    assert reverse("review:queue") not in client.get(reverse("conversation_list")).content.decode()
