from django.db import migrations, models


def fill_log_position(apps, schema_editor):
    """The rows written before the columns: their position from their log id, where it is one."""
    Answer = apps.get_model("polls", "Answer")
    changed = []
    for answer in Answer.objects.only("pk", "log_id").iterator(chunk_size=2000):
        milliseconds, _dash, sequence = answer.log_id.partition("-")
        if milliseconds.isdigit() and sequence.isdigit():
            answer.log_ms, answer.log_seq = int(milliseconds), int(sequence)
            changed.append(answer)
        if len(changed) >= 2000:
            Answer.objects.bulk_update(changed, ["log_ms", "log_seq"])
            changed = []
    Answer.objects.bulk_update(changed, ["log_ms", "log_seq"])


class Migration(migrations.Migration):
    dependencies = [
        ("polls", "0005_event_revision"),
    ]

    operations = [
        migrations.AddField(
            model_name="answer",
            name="log_ms",
            field=models.BigIntegerField(editable=False, null=True, verbose_name="answer log time"),
        ),
        migrations.AddField(
            model_name="answer",
            name="log_seq",
            field=models.BigIntegerField(
                editable=False, null=True, verbose_name="answer log sequence"
            ),
        ),
        migrations.RunPython(fill_log_position, migrations.RunPython.noop, elidable=True),
    ]
