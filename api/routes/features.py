"""GET /features: the fields /predict takes, their codes, ranges and typical values."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep, SpecDep, StoreDep
from api.schemas import MAX_BATCH_SIZE, FeatureDescription, FeaturesResponse

router = APIRouter(tags=["features"])


@router.get(
    "/features", response_model=FeaturesResponse, summary="The fields /predict takes, with their codes"
)
def features(spec: SpecDep, store: StoreDep, settings: SettingsDep) -> FeaturesResponse:
    typical = store.model.typical_road_user if store.model else {}
    return FeaturesResponse(
        features=[
            FeatureDescription(
                name=f.name,
                kind=f.kind,
                group=f.group,
                description=f.description,
                codes=f.codes or None,
                minimum=f.minimum,
                maximum=f.maximum,
                whole=f.data_type == "integer",
                typical=typical.get(f.name),
            )
            for f in spec.features
        ],
        classes=spec.classes,
        api_key_required=bool(settings.api_key),
        max_batch_size=MAX_BATCH_SIZE,
    )
