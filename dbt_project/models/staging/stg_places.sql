-- One row per accident (raw.places): the road where it happened. Codes the code book
-- lists as "not recorded" (mostly an undocumented 0) become NULL; a 0 that means "none"
-- (reserved lane, infrastructure) stays a code.
with source as (
    select * from {{ source('raw', 'places') }}
),

renamed as (
    select
        Num_Acc as num_acc,
        catr as road_category_code,
        nullif({{ trim_spaces('voie') }}, '') as road_number,
        nullif(v1, 0) as road_number_index,
        nullif({{ trim_spaces('v2') }}, '') as road_number_letter,
        nullif(circ, 0) as traffic_regime_code,
        nullif(nbv, 0) as lane_count,
        -- One numeric form: data.gouv writes "3", the Kaggle copy "3.0".
        {{ whole_number('pr') }} as reference_marker_raw,
        {{ whole_number('pr1') }} as distance_from_marker_raw,
        vosp as reserved_lane_code,
        nullif(prof, 0) as road_profile_code,
        nullif(plan, 0) as road_alignment_code,
        -- Widths are written in decimetres.
        nullif(lartpc, 0) / 10.0 as central_reserve_width_m,
        nullif(larrout, 0) / 10.0 as carriageway_width_reported_m,
        nullif(surf, 0) as surface_condition_code,
        infra as infrastructure_code,
        nullif(situ, 0) as situation_code,
        env1 as school_proximity_code
    from source
),

checked as (
    select
        *,
        -- Marker 0 at 0 m on a road without markers (municipal roads, car parks, off the
        -- network) is a placeholder: 7.5% of municipal roads in 2013, 46.5% in 2018.
        road_category_code not in (1, 2, 3)
        and reference_marker_raw = 0
        and distance_from_marker_raw = 0 as is_marker_placeholder,
        carriageway_width_reported_m not between {{ var('carriageway_width_min_m') }}
        and {{ var('carriageway_width_max_m') }} as is_carriageway_width_implausible
    from renamed
)

select
    num_acc,
    road_category_code,
    road_number,
    road_number_index,
    road_number_letter,
    traffic_regime_code,
    lane_count,
    case when not is_marker_placeholder then reference_marker_raw end as reference_marker,
    case when not is_marker_placeholder then distance_from_marker_raw end as distance_from_marker_m,
    coalesce(is_marker_placeholder, false) as is_marker_placeholder,
    reserved_lane_code,
    road_profile_code,
    road_alignment_code,
    central_reserve_width_m,
    case when not is_carriageway_width_implausible then carriageway_width_reported_m end as carriageway_width_m,
    coalesce(is_carriageway_width_implausible, false) as is_carriageway_width_implausible,
    surface_condition_code,
    infrastructure_code,
    situation_code,
    school_proximity_code
from checked
