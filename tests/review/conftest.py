"""Review fixtures: people in each role and a finished reply to review."""

import pytest
from django.contrib.auth.models import Group, Permission

from conversations.models import Message
from tests.factories import ConversationFactory, MessageFactory, UserFactory


def make_reply(owner, *, text="The capital of Australia is Sydney.", model="claude-sonnet-4-6"):
    """A conversation of `owner` with one question and a finished reply; return the reply."""
    conversation = ConversationFactory(user=owner, system_prompt="Be concise.")
    question = MessageFactory(conversation=conversation, content="What is the capital?")
    return MessageFactory(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=text,
        model=model,
        input_tokens=120,
        output_tokens=9,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=100,
        context_start_id=question.pk,
        system_prompt="Be concise.",
    )


def reviewers_group() -> Group:
    """The group the data migration made (remade if a transactional test flushed it)."""
    group, _ = Group.objects.get_or_create(name="Reviewers")
    group.permissions.add(
        Permission.objects.get(content_type__app_label="review", codename="review_replies")
    )
    return group


def make_reviewer(**fields):
    person = UserFactory(is_staff=True, **fields)
    person.groups.add(reviewers_group())
    return person


@pytest.fixture
def reviewer(db):
    """Staff in the Reviewers group."""
    return make_reviewer()


@pytest.fixture
def staff_without_group(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def admin(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def reply(user):
    return make_reply(user)
