# Anonymous API predictions: only the client that made one may answer for it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webapp', '0005_learning_loop'),
    ]

    operations = [
        migrations.AddField(
            model_name='keptphoto',
            name='client_sha256',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
