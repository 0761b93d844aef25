import factory
from factory.django import DjangoModelFactory

from apps.accounts.models import Membership, Merchant, Payer, Role, Shop, User

TEST_PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    display_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MerchantFactory(DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    status = Merchant.Status.ACTIVE
    mcc = "5814"


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    merchant = factory.SubFactory(MerchantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class ShopFactory(DjangoModelFactory):
    class Meta:
        model = Shop

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Shop {n}")
    address = "北京市朝阳区建国路1号"
    latitude = "39.908700"
    longitude = "116.397500"


class PayerFactory(DjangoModelFactory):
    class Meta:
        model = Payer

    user = factory.SubFactory(UserFactory)
    account_class = Payer.AccountClass.CLASS_II
