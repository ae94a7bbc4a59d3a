from rest_framework import serializers


class UsageSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="Today (UTC), the day these figures are for.")
    messages = serializers.IntegerField(
        help_text="Replies from the tutors today, including one being generated now."
    )
    tokens = serializers.IntegerField(help_text="Tokens AI-Core reported for today's replies.")
    messages_limit = serializers.IntegerField(
        allow_null=True, help_text="Replies allowed per day; null: no limit."
    )
    tokens_limit = serializers.IntegerField(
        allow_null=True, help_text="Tokens allowed per day; null: no limit."
    )
    resets_at = serializers.DateTimeField(help_text="The next UTC midnight, when the day's quota renews.")
