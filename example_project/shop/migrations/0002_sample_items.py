from decimal import Decimal

from django.db import migrations

# At least 10 rows: /bench/db reads the first 10 and must return the same payload everywhere.
SAMPLE_ITEMS = [
    ("Teapot", "24.90"),
    ("Espresso cup", "6.50"),
    ("Milk jug", "12.00"),
    ("Coffee grinder", "89.00"),
    ("French press", "32.50"),
    ("Tea strainer", "4.20"),
    ("Kettle", "45.00"),
    ("Sugar bowl", "9.90"),
    ("Saucer", "3.10"),
    ("Mug", "7.80"),
    ("Tray", "18.00"),
    ("Coaster set", "11.40"),
]


def add_items(apps, schema_editor):
    Item = apps.get_model("shop", "Item")
    db = schema_editor.connection.alias
    Item.objects.using(db).bulk_create(
        Item(name=name, price=Decimal(price)) for name, price in SAMPLE_ITEMS
    )


def remove_items(apps, schema_editor):
    Item = apps.get_model("shop", "Item")
    db = schema_editor.connection.alias
    Item.objects.using(db).filter(name__in=[name for name, _ in SAMPLE_ITEMS]).delete()


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(add_items, remove_items)]
