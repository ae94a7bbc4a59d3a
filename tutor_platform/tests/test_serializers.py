"""Issue 17: ModelSerializers work their fields out once per class."""

from rest_framework import serializers

from chats.serializers import MessageSerializer
from tutoring.serializers import StaffTutorSerializer, TutorSerializer


def test_fields_are_built_once_per_class_and_copied_per_instance(monkeypatch):
    built: list[str] = []
    real_build_field = serializers.ModelSerializer.build_field

    def build_field(self, field_name, *args, **kwargs):
        built.append(field_name)
        return real_build_field(self, field_name, *args, **kwargs)

    monkeypatch.setattr(serializers.ModelSerializer, "build_field", build_field)
    monkeypatch.delattr(MessageSerializer, "_built_fields", raising=False)
    first, second = MessageSerializer().fields, MessageSerializer().fields
    assert built.count("role") == 1  # DRF alone works it out for every instance
    assert list(first) == list(second) == MessageSerializer.Meta.fields
    assert first["role"] is not second["role"]
    assert first["role"].parent is not second["role"].parent


def test_a_subclass_builds_its_own_fields():
    assert "system_prompt" not in TutorSerializer().fields
    assert "system_prompt" in StaffTutorSerializer().fields
    assert "system_prompt" not in TutorSerializer().fields
